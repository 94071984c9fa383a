package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// socketsHeap is the Go heap of one server with the adapter, before and with many sockets.
type socketsHeap struct {
	Sockets        int     `json:"sockets"`
	How            string  `json:"how"`
	HeapBeforeMB   float64 `json:"heap_before_mb"`
	HeapWithMB     float64 `json:"heap_with_sockets_mb"`
	PerSocketKB    float64 `json:"per_socket_kb"`
	ConnectSeconds float64 `json:"connect_s"`
}

// heapWithSockets opens sc.HeapSockets Socket.IO sessions on one Go server with the adapter and
// reads the heap before and after, both after a collection. The cheapest honest way: each
// session is a real Engine.IO handshake over HTTP long-polling (GET, then POST "40" to join
// "/"), so the server builds every socket through its own code path; the client keeps no
// object per session and polls no more, and the measurement ends well within the server's
// ping timeout (25 s + 20 s), after which it closes them.
func (b *bencher) heapWithSockets(ctx context.Context, sc scaleConfig) (*socketsHeap, error) {
	topic := testsupport.UniqueName("scale-heap")
	defer b.removeQueues(context.WithoutCancel(ctx), topic)
	c, err := startGoCluster(ctx, b.cfg, 1, topic, sc.tweak)
	if err != nil {
		return nil, err
	}
	defer closeCluster("go", c)
	nsp := c.nodes[0].io.Sockets()
	h := &socketsHeap{Sockets: sc.HeapSockets, How: "Engine.IO handshakes over HTTP long-polling, one Socket.IO connect each; the client keeps nothing"}
	h.HeapBeforeMB = goHeapMB()
	log.Printf("scale: heap %.1f MB with one server; opening %d sessions", h.HeapBeforeMB, sc.HeapSockets)
	t0 := time.Now()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(sc.HeapSockets) {
				if err := testsupport.ConnectPolling(ctx, client, c.nodes[0].url, nil, ""); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	for nsp.Sockets().Len() < sc.HeapSockets {
		if time.Since(t0) > 40*time.Second {
			return nil, fmt.Errorf("%d of %d sockets connected after %v", nsp.Sockets().Len(), sc.HeapSockets, time.Since(t0))
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.ConnectSeconds = round1(time.Since(t0).Seconds())
	client.CloseIdleConnections()
	h.HeapWithMB = goHeapMB()
	h.PerSocketKB = round1((h.HeapWithMB - h.HeapBeforeMB) * 1024 / float64(sc.HeapSockets))
	log.Printf("scale: heap %.1f MB with %d sockets (%.1f KB each), connected in %.1f s", h.HeapWithMB, sc.HeapSockets, h.PerSocketKB, h.ConnectSeconds)
	return h, nil
}
