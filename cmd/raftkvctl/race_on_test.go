//go:build race

package main

// raceBuild: the tests run with -race, so raftkvctl is built with it too.
const raceBuild = true
