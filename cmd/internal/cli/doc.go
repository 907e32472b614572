// Package cli holds what raftkv's commands share on their command line:
// the --version text, whether a stream is a terminal, and the client TLS
// flags. It must not parse flags or exit; each command does that itself.
package cli
