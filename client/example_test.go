package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/testcluster"
)

// endpoints are the client URLs of a 3-member cluster, as the Procfile
// starts it. TestExamples points them at a cluster of its own.
var endpoints = []string{"http://127.0.0.1:12380", "http://127.0.0.1:22380", "http://127.0.0.1:32380"}

func Example() {
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if _, err := c.Put(ctx, "greeting", []byte("hello")); err != nil {
		log.Fatal(err)
	}
	v, err := c.Get(ctx, "greeting") // linearizable
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("greeting = %s\n", v)

	if _, err := c.Delete(ctx, "greeting"); err != nil {
		log.Fatal(err)
	}
	_, err = c.Get(ctx, "greeting")
	fmt.Println("after delete, not found:", errors.Is(err, client.ErrNotFound))
}

// Read your own write on any member without a quorum round: the write's
// index makes the member wait until it has applied it.
func ExampleWithMinIndex() {
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	index, err := c.Put(ctx, "counter", []byte("1"))
	if err != nil {
		log.Fatal(err)
	}
	v, err := c.Get(ctx, "counter", client.WithMinIndex(index))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("counter = %s\n", v)
}

// PutAll writes several keys as one atomic write. In a sharded deployment
// they must share a group: a {tag} puts keys in one bucket.
func ExampleClient_PutAll() {
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if _, err := c.PutAll(ctx, map[string]string{"{user42}:name": "Ada", "{user42}:lang": "en"}); err != nil {
		log.Fatal(err)
	}
	name, _ := c.Get(ctx, "{user42}:name")
	lang, _ := c.Get(ctx, "{user42}:lang")
	fmt.Printf("%s %s\n", name, lang)
}

// A sharded deployment: the Client asks the config group where each key's
// bucket is served. Join adds a group (here, eraft's example) to the config.
func ExampleNew_sharded() {
	c, err := client.New(client.Config{
		ConfigEndpoints: []string{"http://127.0.0.1:6080", "http://127.0.0.1:6081", "http://127.0.0.1:6082"},
		RequestTimeout:  5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	cfg, err := c.Join(ctx, map[uint64][]string{1: {"http://127.0.0.1:6088", "http://127.0.0.1:6089", "http://127.0.0.1:6090"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("config version", cfg.Version)
	if _, err := c.Put(ctx, "k", []byte("v")); errors.Is(err, client.ErrOutcomeUnknown) {
		fmt.Println("the write may or may not have been applied")
	}
}

// TestExamples runs the examples that need a single raft group against a
// real 3-member cluster and checks what they print.
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real raftkv processes")
	}
	tc := testcluster.Start(t, testcluster.Options{N: 3})
	tc.WaitLeader(t, 20*time.Second)
	saved := endpoints
	endpoints = []string{tc.ClientURL(1), tc.ClientURL(2), tc.ClientURL(3)}
	defer func() { endpoints = saved }()
	for _, ex := range []struct {
		name string
		run  func()
		want string
	}{
		{"Example", Example, "greeting = hello\nafter delete, not found: true\n"},
		{"ExampleWithMinIndex", ExampleWithMinIndex, "counter = 1\n"},
		{"ExampleClient_PutAll", ExampleClient_PutAll, "Ada en\n"},
	} {
		if got := captureStdout(t, ex.run); got != ex.want {
			t.Errorf("%s printed %q, want %q", ex.name, got, ex.want)
		}
	}
}

// captureStdout runs f with os.Stdout going to a pipe and returns what it
// printed.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() {
		var b strings.Builder
		io.Copy(&b, r)
		out <- b.String()
	}()
	defer func() { os.Stdout = saved }()
	f()
	w.Close()
	return <-out
}
