// Package faultproxy is a fault-injecting TCP proxy for one peer link: it
// forwards connections to a target and can cut the link (a partition) or
// cut its connections at random (message loss on a stream transport).
//
// It owns its listener, one goroutine accepting, two per forwarded
// connection, and one ticking while loss is set; Close stops them all.
package faultproxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// lossTick is how often each connection is considered for a random cut.
const lossTick = 100 * time.Millisecond

// Proxy forwards TCP connections from its address to a target.
type Proxy struct {
	ln     net.Listener
	target string
	done   chan struct{}
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		conns  map[net.Conn]net.Conn // client side -> target side
		cut    bool
		loss   float64
		rng    *rand.Rand
		ticker bool
	}
}

// New listens on listenAddr (use "127.0.0.1:0" for a free port) and
// forwards every accepted connection to target.
func New(listenAddr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, done: make(chan struct{})}
	p.mu.conns = map[net.Conn]net.Conn{}
	p.mu.rng = rand.New(rand.NewPCG(1, 2))
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listen address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetCut cuts the link (closing its connections and refusing new ones)
// or restores it.
func (p *Proxy) SetCut(cut bool) {
	p.mu.Lock()
	p.mu.cut = cut
	var victims []net.Conn
	if cut {
		victims = p.takeAllLocked()
	}
	p.mu.Unlock()
	closeAll(victims)
}

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
	victims := p.takeAllLocked()
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
	server, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if p.mu.cut {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.mu.conns[client] = server
	p.mu.Unlock()

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
		for c, s := range p.mu.conns {
			if p.mu.loss > 0 && p.mu.rng.Float64() < p.mu.loss {
				victims = append(victims, c, s)
				delete(p.mu.conns, c)
			}
		}
		p.mu.Unlock()
		closeAll(victims)
	}
}

func (p *Proxy) takeAllLocked() []net.Conn {
	var out []net.Conn
	for c, s := range p.mu.conns {
		out = append(out, c, s)
		delete(p.mu.conns, c)
	}
	return out
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}
