// Command etcd is etcd's server (etcdmain) built from the
// go.etcd.io/etcd/server/v3 module this repository already uses, so that
// bench/etcd.sh can measure etcd on the machine raftkv is measured on.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
