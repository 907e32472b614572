// Package queryparam holds what a member and the router say of a write's
// query parameters, so that both refuse the same ones in the same words.
package queryparam

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxName bounds how much of a parameter's name a sentence quotes.
const maxName = 40

// Unknown returns the sentence refusing a parameter of q other than those
// the write (what, such as "PUT of a key") takes, naming the first in
// byte order; "" when q holds none. A write with a misspelt ?tll=5 would
// otherwise be applied without its TTL.
func Unknown(q url.Values, what string, takes ...string) string {
	var unknown []string
	for name := range q {
		if !slices.Contains(takes, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	name := slices.Min(unknown)
	if len(name) > maxName {
		name = name[:maxName] + "..."
	}
	if len(takes) == 0 {
		return what + " takes no query parameters; not " + strconv.Quote(name)
	}
	noun := " takes only the query parameter "
	if len(takes) > 1 {
		noun = " takes only the query parameters "
	}
	return what + noun + strings.Join(takes, ", ") + "; not " + strconv.Quote(name)
}
