package faultproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer echoes lines until the connection closes.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

func TestProxyForwardsCutsAndHeals(t *testing.T) {
	p, err := New("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := roundTrip(p.Addr()); err != nil {
		t.Fatalf("forwarding: %v", err)
	}

	// A long-lived connection dies when the link is cut.
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello\n"))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	p.SetCut(true)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("connection survived the cut")
	}
	if err := roundTrip(p.Addr()); err == nil {
		t.Fatal("new connection passed a cut link")
	}
	p.SetCut(false)
	if err := roundTrip(p.Addr()); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestProxyLossCutsConnections(t *testing.T) {
	p, err := New("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x\n"))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	p.SetLoss(1, 7)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("connection survived certain loss")
	}
	p.SetLoss(0, 7)
	if err := roundTrip(p.Addr()); err != nil {
		t.Fatalf("after loss stopped: %v", err)
	}
}

// dialAs opens a connection to addr that starts with a request head
// naming sender in X-Server-From (none when sender is ""), and checks it
// is forwarded: the echo server returns the head's lines, then a ping.
func dialAs(t *testing.T, addr, sender string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	head := "GET /raft/stream/message/1 HTTP/1.1\r\nHost: h\r\n"
	if sender != "" {
		head += "x-server-from: " + sender + "\r\n"
	}
	c.Write([]byte(head + "\r\nping\n"))
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("sender %q: connection not forwarded: %v", sender, err)
		}
		if line == "ping\n" {
			return c, r
		}
	}
}

// alive reports whether c still echoes.
func alive(c net.Conn, r *bufio.Reader) bool {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("again\n")); err != nil {
		return false
	}
	line, err := r.ReadString('\n')
	return err == nil && line == "again\n"
}

// TestProxyBySender: the links of several senders to one target, told
// apart by a header of each connection's first request, are cut one by
// one; a connection that does not start with a request head (TLS) counts
// as sender "", and every cut of SetCut applies to all.
func TestProxyBySender(t *testing.T) {
	p, err := NewBySender("127.0.0.1:0", echoServer(t), "X-Server-From")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, ra := dialAs(t, p.Addr(), "1")
	b, rb := dialAs(t, p.Addr(), "2")

	p.SetCutFrom("1", true)
	if alive(a, ra) {
		t.Fatal("sender 1's connection survived the cut of its link")
	}
	if !alive(b, rb) {
		t.Fatal("sender 2's connection died with sender 1's link")
	}
	// A new connection of sender 1 is refused; sender 2's are not.
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nX-Server-From: 1\r\n\r\nping\n"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Fatal("a new connection of a cut sender was forwarded")
	}
	dialAs(t, p.Addr(), "2")

	p.SetCutFrom("1", false)
	dialAs(t, p.Addr(), "1")

	// Not a request head: forwarded as is, as sender "".
	tlsLike, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer tlsLike.Close()
	tlsLike.Write([]byte("\x16\x03\x01 hello\n"))
	tr := bufio.NewReader(tlsLike)
	tlsLike.SetReadDeadline(time.Now().Add(2 * time.Second))
	if line, err := tr.ReadString('\n'); err != nil || line != "\x16\x03\x01 hello\n" {
		t.Fatalf("a connection without a request head: %q, %v", line, err)
	}
	p.SetCutFrom("", true)
	if alive(tlsLike, tr) {
		t.Fatal("the unnamed sender's connection survived the cut of its link")
	}
	if !alive(b, rb) {
		t.Fatal("sender 2's connection died with the unnamed sender's link")
	}
	p.SetCutFrom("", false)

	p.SetCut(true)
	if alive(b, rb) {
		t.Fatal("SetCut(true) left a sender's connection open")
	}
}
