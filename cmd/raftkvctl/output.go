package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// printTable writes a bordered table, as etcdctl's -w table does.
func printTable(w io.Writer, header []string, rows [][]string) error {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	rule := func() {
		for _, wd := range widths {
			b.WriteString("+" + strings.Repeat("-", wd+2))
		}
		b.WriteString("+\n")
	}
	line := func(cells []string) {
		for i, c := range cells {
			b.WriteString("| " + c + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)) + " ")
		}
		b.WriteString("|\n")
	}
	rule()
	line(header)
	rule()
	for _, r := range rows {
		line(r)
	}
	rule()
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonValue carries a key's value in JSON: as text when it is UTF-8, else
// in base64, as the HTTP API does.
type jsonValue struct {
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
}

func newJSONValue(v []byte) jsonValue {
	if utf8.Valid(v) {
		s := string(v)
		return jsonValue{Value: &s}
	}
	s := base64.StdEncoding.EncodeToString(v)
	return jsonValue{ValueBase64: &s}
}

// printable is a value for a table cell: quoted when it is not plain text.
func printable(v []byte) string {
	s := string(v)
	if !utf8.Valid(v) || strings.ContainsAny(s, "\n\r\t") {
		return fmt.Sprintf("%q", s)
	}
	return s
}
