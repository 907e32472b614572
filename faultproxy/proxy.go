// Package faultproxy is a fault-injecting TCP proxy for one peer link: it
// forwards connections to a target and can cut the link (a partition) or
// cut its connections at random (message loss on a stream transport).
//
// A proxy made by NewBySender serves the links of several senders to one
// target instead, each connection's sender named by a header of its first
// HTTP request (rafthttp's X-Server-From), and cuts them one by one.
//
// It owns its listener, one goroutine accepting, two per forwarded
// connection, and one ticking while loss is set; Close stops them all.
package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// lossTick is how often each connection is considered for a random cut.
const lossTick = 100 * time.Millisecond

// maxHead bounds the request head a sender-telling proxy reads, and
// headWait how long it waits for it.
const (
	maxHead  = 16 << 10
	headWait = 2 * time.Second
)

// Proxy forwards TCP connections from its address to a target.
type Proxy struct {
	ln     net.Listener
	target string
	// header names a connection's sender (NewBySender); "" for a proxy of
	// one link.
	header string
	done   chan struct{}
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		conns  map[net.Conn]conn // by client side
		cut    bool
		cutOf  map[string]bool // senders whose links are cut
		loss   float64
		rng    *rand.Rand
		ticker bool
	}
}

// conn is a forwarded connection's target side and its sender.
type conn struct {
	server net.Conn
	sender string
}

// New listens on listenAddr (use "127.0.0.1:0" for a free port) and
// forwards every accepted connection to target.
func New(listenAddr, target string) (*Proxy, error) {
	return NewBySender(listenAddr, target, "")
}

// NewBySender is New for the links of several senders to one target: each
// connection's sender is the value of header in its first HTTP request
// ("" if it has none, or if the connection does not start with a request
// head in plain text, as a TLS one does not). SetCutFrom cuts one
// sender's link. With header "" it is New.
func NewBySender(listenAddr, target, header string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, header: header, done: make(chan struct{})}
	p.mu.conns = map[net.Conn]conn{}
	p.mu.cutOf = map[string]bool{}
	p.mu.rng = rand.New(rand.NewPCG(1, 2))
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listen address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetCut cuts the link (closing its connections and refusing new ones)
// or restores it; of a proxy by sender, every sender's link, whatever
// SetCutFrom says.
func (p *Proxy) SetCut(cut bool) {
	p.mu.Lock()
	p.mu.cut = cut
	var victims []net.Conn
	if cut {
		victims = p.takeLocked(func(conn) bool { return true })
	}
	p.mu.Unlock()
	closeAll(victims)
}

// SetCutFrom cuts the link of one sender (see NewBySender) or restores
// it.
func (p *Proxy) SetCutFrom(sender string, cut bool) {
	p.mu.Lock()
	p.mu.cutOf[sender] = cut
	var victims []net.Conn
	if cut {
		victims = p.takeLocked(func(c conn) bool { return c.sender == sender })
	}
	p.mu.Unlock()
	closeAll(victims)
}

// cutLocked reports whether sender's connections are refused.
func (p *Proxy) cutLocked(sender string) bool { return p.mu.cut || p.mu.cutOf[sender] }

// SetLoss makes every connection be cut with probability prob every
// 100ms, drawn from a generator seeded with seed; prob 0 stops it.
func (p *Proxy) SetLoss(prob float64, seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.loss = prob
	p.mu.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if prob > 0 && !p.mu.ticker {
		p.mu.ticker = true
		p.wg.Add(1)
		go p.lossLoop()
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.ln.Close()
	p.mu.Lock()
	victims := p.takeLocked(func(conn) bool { return true })
	p.mu.Unlock()
	closeAll(victims)
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		cut := p.mu.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	var head []byte
	sender := ""
	if p.header != "" {
		head, sender = readSender(client, p.header)
	}
	server, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if p.cutLocked(sender) {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.mu.conns[client] = conn{server, sender}
	p.mu.Unlock()
	if _, err := server.Write(head); err != nil {
		p.mu.Lock()
		delete(p.mu.conns, client)
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}

	var pipes sync.WaitGroup
	pipes.Add(2)
	pipe := func(dst, src net.Conn) {
		defer pipes.Done()
		io.Copy(dst, src)
		// Either side ending ends the pair, as a real cut would.
		dst.Close()
		src.Close()
	}
	go pipe(server, client)
	go pipe(client, server)
	pipes.Wait()
	p.mu.Lock()
	delete(p.mu.conns, client)
	p.mu.Unlock()
}

func (p *Proxy) lossLoop() {
	defer p.wg.Done()
	t := time.NewTicker(lossTick)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		var victims []net.Conn
		p.mu.Lock()
		victims = p.takeLocked(func(conn) bool { return p.mu.loss > 0 && p.mu.rng.Float64() < p.mu.loss })
		p.mu.Unlock()
		closeAll(victims)
	}
}

// takeLocked removes the connections for which pick is true and returns
// both sides of each, to be closed.
func (p *Proxy) takeLocked(pick func(conn) bool) []net.Conn {
	var out []net.Conn
	for c, s := range p.mu.conns {
		if pick(s) {
			out = append(out, c, s.server)
			delete(p.mu.conns, c)
		}
	}
	return out
}

// readSender reads c's first request head, up to its blank line (at most
// maxHead bytes, within headWait), and returns the bytes read and the
// value of header in it: "" when there is none, or when c does not start
// like a request line (a TLS handshake does not), in which case it stops
// at the first bytes.
func readSender(c net.Conn, header string) ([]byte, string) {
	c.SetReadDeadline(time.Now().Add(headWait))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 0, 1024)
	for len(buf) < maxHead {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > 0 && (buf[0] < 'A' || buf[0] > 'Z') {
			return buf, "" // not a request line: no head to read
		}
		if end := bytes.Index(buf, []byte("\r\n\r\n")); end >= 0 {
			return buf, headerValue(buf[:end], header)
		}
		if err != nil {
			break
		}
	}
	return buf, ""
}

// headerValue is the value of the first field named name (any case) in
// head, a request line and header lines.
func headerValue(head []byte, name string) string {
	lines := bytes.Split(head, []byte("\r\n"))
	for _, l := range lines[1:] {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}
