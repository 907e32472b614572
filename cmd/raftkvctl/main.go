// Command raftkvctl is raftkv's command-line client: key reads and writes,
// membership, status, leader transfer, the sharding verbs and a short
// linearizability self-check, all through package client.
//
//	raftkvctl --endpoints http://127.0.0.1:12380,http://127.0.0.1:22380 put greeting hello
//	raftkvctl get greeting
//	raftkvctl -w table status
//
// Every flag can also be set as RAFTKVCTL_<FLAG> (upper case, '-' as '_'),
// e.g. RAFTKVCTL_ENDPOINTS; a flag on the command line wins. The exit
// status is 0 on success, 1 when the operation failed and 2 on a usage
// error; errors are one line on stderr.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
