package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/client"
	"github.com/spf13/cobra"
)

func (a *app) txnCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "txn < FILE",
		Short: "Apply a transaction read from stdin: compares, then success and failure operations",
		Long: `Apply a transaction, atomically: if every compare holds, the success
operations, else the failure ones. It reads etcdctl txn's form from standard
input: compares, one a line, then an empty line, the success operations, an
empty line, the failure operations.

  compare:    value("KEY") = "VALUE"       (also val; = != > <, values bytewise)
              mod("KEY") > "41"            (the key's mod index; 0 when absent)
              create("KEY") = "0"          (the key's create index)
              exists("KEY") = "false"
  operation:  put KEY VALUE | del KEY | get KEY

Keys and values with spaces or quotes are written as Go strings ("a b").
It prints SUCCESS or FAILURE, then OK for each put and del and the key and
value of each get that found its key. In a sharded deployment every key must
be in buckets of one group ({tag} hash tags put keys together).`,
		Example: `  printf 'mod("counter") = "41"\n\nput counter 8\n\nget counter\n' | raftkvctl txn`,
		Args:    cobra.NoArgs,
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, _ []string) error {
		t, err := parseTxn(a.stdin)
		if err != nil {
			return usageError{err}
		}
		c, err := a.keyClient()
		if err != nil {
			return err
		}
		defer c.Close()
		res, err := c.Txn(a.ctx, t)
		if err != nil {
			return err
		}
		branch := t.Success
		if !res.Succeeded {
			branch = t.Failure
		}
		return a.printTxn(res, branch)
	})
	return cmd
}

// parseTxn reads etcdctl txn's form (see txnCommand).
func parseTxn(r io.Reader) (client.Txn, error) {
	var t client.Txn
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	section, line := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			section++
			if section > 2 {
				break
			}
			continue
		}
		var err error
		switch section {
		case 0:
			var cmp client.Compare
			if cmp, err = parseCompare(text); err == nil {
				t.Compares = append(t.Compares, cmp)
			} else if _, opErr := parseTxnOp(text); opErr == nil {
				// An operation where the compares go: etcdctl's form
				// starts with the compares, so a transaction without
				// any starts with an empty line.
				err = fmt.Errorf("%v; this is an operation, and the compares come first: without compares, start with an empty line", err)
			}
		case 1, 2:
			var op client.TxnOp
			if op, err = parseTxnOp(text); err == nil {
				if section == 1 {
					t.Success = append(t.Success, op)
				} else {
					t.Failure = append(t.Failure, op)
				}
			}
		}
		if err != nil {
			return client.Txn{}, fmt.Errorf("txn line %d: %v", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return client.Txn{}, fmt.Errorf("reading the txn: %v", err)
	}
	if len(t.Compares)+len(t.Success)+len(t.Failure) == 0 {
		return client.Txn{}, errors.New("txn: nothing read from standard input")
	}
	return t, nil
}

// parseCompare reads `target("key") op "value"`.
func parseCompare(s string) (client.Compare, error) {
	bad := func(format string, args ...any) (client.Compare, error) {
		return client.Compare{}, fmt.Errorf("compare %q: "+format, append([]any{s}, args...)...)
	}
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return bad(`want target("key") op "value"`)
	}
	target := strings.TrimSpace(s[:open])
	key, err := unquote(strings.TrimSpace(s[open+1 : closing]))
	if err != nil {
		return bad("key: %v", err)
	}
	rest := fields(strings.TrimSpace(s[closing+1:]))
	if len(rest) != 2 {
		return bad(`want an operator (= != > <) and a value after target("key")`)
	}
	var op client.CompareOp
	switch rest[0] {
	case "=", "==":
		op = client.Equal
	case "!=":
		op = client.NotEqual
	case ">":
		op = client.Greater
	case "<":
		op = client.Less
	default:
		return bad("operator %q: want = != > <", rest[0])
	}
	val, err := unquote(rest[1])
	if err != nil {
		return bad("value: %v", err)
	}
	switch target {
	case "value", "val":
		return client.ValueIs(key, op, []byte(val)), nil
	case "mod", "create":
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return bad("%s compares a raft index: %q is not one", target, val)
		}
		if target == "mod" {
			return client.ModIs(key, op, n), nil
		}
		return client.CreateIs(key, op, n), nil
	case "exists":
		b, err := strconv.ParseBool(val)
		if err != nil || (op != client.Equal && op != client.NotEqual) {
			return bad(`exists takes = or != and "true" or "false"`)
		}
		return client.Exists(key, b == (op == client.Equal)), nil
	}
	return bad("target %q: want value, mod, create or exists", target)
}

// parseTxnOp reads `put KEY VALUE`, `del KEY` or `get KEY`.
func parseTxnOp(s string) (client.TxnOp, error) {
	f := fields(s)
	args := make([]string, 0, len(f))
	for _, x := range f[1:] {
		u, err := unquote(x)
		if err != nil {
			return client.TxnOp{}, fmt.Errorf("operation %q: %v", s, err)
		}
		args = append(args, u)
	}
	switch {
	case f[0] == "put" && len(args) == 2:
		return client.OpPut(args[0], []byte(args[1]), 0), nil
	case (f[0] == "del" || f[0] == "delete") && len(args) == 1:
		return client.OpDelete(args[0]), nil
	case f[0] == "get" && len(args) == 1:
		return client.OpGet(args[0]), nil
	}
	return client.TxnOp{}, fmt.Errorf("operation %q: want put KEY VALUE, del KEY or get KEY", s)
}

// fields splits s at spaces, keeping double-quoted strings (with their
// escapes) whole.
func fields(s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		end := strings.IndexAny(s, " \t")
		if s[0] == '"' {
			end = len(s)
			for i := 1; i < len(s); i++ {
				if s[i] == '\\' {
					i++
				} else if s[i] == '"' {
					end = i + 1
					break
				}
			}
		}
		if end < 0 {
			end = len(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

// unquote reads a Go-quoted string, or takes s as it is.
func unquote(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		return strconv.Unquote(s)
	}
	return s, nil
}

func (a *app) printTxn(res client.TxnResponse, branch []client.TxnOp) error {
	opName := map[client.TxnOpType]string{client.TxnPut: "put", client.TxnDelete: "delete", client.TxnGet: "get"}
	switch a.writeOut {
	case formatJSON:
		type getJSON struct {
			kvJSON
			Found bool `json:"found"`
		}
		out := struct {
			Succeeded bool             `json:"succeeded"`
			Index     uint64           `json:"index"`
			ModIndex  uint64           `json:"mod_index,omitempty"`
			Responses []map[string]any `json:"responses"`
		}{Succeeded: res.Succeeded, Index: res.Index, ModIndex: res.ModIndex, Responses: []map[string]any{}}
		for i, r := range res.Responses {
			switch r.Type {
			case client.TxnGet:
				g := getJSON{Found: r.Found}
				if r.Found {
					g.kvJSON = newKVJSON(r.KV)
				} else if i < len(branch) {
					g.Key = branch[i].Key
				}
				out.Responses = append(out.Responses, map[string]any{"get": g})
			default:
				out.Responses = append(out.Responses, map[string]any{opName[r.Type]: struct{}{}})
			}
		}
		return printJSON(a.stdout, out)
	case formatTable:
		rows := [][]string{}
		for i, r := range res.Responses {
			key, value, found := "", "", ""
			if i < len(branch) {
				key = branch[i].Key
			}
			if r.Type == client.TxnGet {
				found = strconv.FormatBool(r.Found)
				if r.Found {
					value = printable(r.KV.Value)
				}
			}
			rows = append(rows, []string{opName[r.Type], key, value, found})
		}
		fmt.Fprintf(a.stdout, "%s at index %d\n", verdict(res.Succeeded), res.Index)
		return printTable(a.stdout, []string{"OPERATION", "KEY", "VALUE", "FOUND"}, rows)
	}
	fmt.Fprintf(a.stdout, "%s\n", verdict(res.Succeeded))
	for _, r := range res.Responses {
		switch {
		case r.Type != client.TxnGet:
			fmt.Fprintln(a.stdout, "OK")
		case r.Found:
			fmt.Fprintf(a.stdout, "%s\n%s\n", r.KV.Key, r.KV.Value)
		}
	}
	return nil
}

func verdict(succeeded bool) string {
	if succeeded {
		return "SUCCESS"
	}
	return "FAILURE"
}
