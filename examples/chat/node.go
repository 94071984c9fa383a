package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	sqsadapter "github.com/socketio-go/aws-sqs-adapter"
)

//go:embed web/index.html web/app.js web/style.css
var webFiles embed.FS

// chatNode is one Go Socket.IO server of the chat cluster. Its HTTP listener stays up from start
// to exit so that its page and its stop/start buttons keep working; what stops and starts is the
// Socket.IO server with its adapter (its SQS queue and subscription).
type chatNode struct {
	c    *cluster
	name string
	url  string
	log  *slog.Logger
	http *http.Server

	// opMu serialises start and stop.
	opMu sync.Mutex

	mu      sync.Mutex
	io      *socket.Server // nil while stopped
	builder *sqsadapter.AdapterBuilder
	engine  http.Handler
	started time.Time
}

func newChatNode(c *cluster, i int, ln net.Listener) *chatNode {
	n := &chatNode{
		c:    c,
		name: fmt.Sprintf("node-%d", i),
		url:  "http://" + ln.Addr().String() + "/",
	}
	n.log = c.log.With("node", n.name)

	web, _ := fs.Sub(webFiles, "web")
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(web))
	mux.HandleFunc("GET /vendor/socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(c.bundle)
	})
	mux.HandleFunc("GET /api/nodes", n.serveNodes)
	mux.HandleFunc("POST /api/nodes/{node}/{action}", n.serveNodeAction)
	mux.HandleFunc("/socket.io/", n.serveSocketIO)
	n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("chat: HTTP server failed", "error", err)
		}
	}()
	return n
}

// start creates the node's Socket.IO server with a new AdapterBuilder and waits for Init, which
// creates (or finds) the topic, creates this node's queue and subscribes it.
func (n *chatNode) start(ctx context.Context) error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	if n.running() {
		return fmt.Errorf("%s is already running", n.name)
	}
	builder := sqsadapter.NewAdapterBuilder(n.c.sns, n.c.sqs, &sqsadapter.Options{
		TopicName: n.c.topic,
		Logger:    n.log,
	})
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(builder)
	// Connection state recovery: a client that drops and comes back within 2 minutes (the
	// default) gets its socket id, rooms and data back, and every broadcast it missed. When this
	// node is stopped (io.Close), its adapter hands its sessions off to the other nodes, so its
	// users are recovered on whichever node their page reconnects to.
	opts.SetConnectionStateRecovery(socket.DefaultConnectionStateRecovery())
	// The page of a stopped node reconnects to another node: a cross-origin request for the
	// HTTP long-polling transport, which the demo's own pages may make.
	opts.SetCors(&types.Cors{Origin: n.c.origins()})
	io := socket.NewServer(nil, opts)
	n.handle(io)
	engine := io.ServeHandler(nil)
	if err := builder.Init(ctx); err != nil {
		io.Close(nil)
		return fmt.Errorf("%s: adapter Init: %w", n.name, err)
	}
	n.mu.Lock()
	n.io, n.builder, n.engine, n.started = io, builder, engine, time.Now()
	n.mu.Unlock()
	n.log.Info("chat: node up", "url", n.url)
	return nil
}

// stop closes the node's Socket.IO server gracefully (io.Close): its clients are disconnected
// (their pages reconnect to another node), and its adapter hands their sessions off to the other
// nodes (connection state recovery), says goodbye to the cluster, unsubscribes and deletes its
// queue.
func (n *chatNode) stop() error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	io, builder := n.io, n.builder
	n.io, n.builder, n.engine = nil, nil, nil
	n.mu.Unlock()
	if io == nil {
		return nil
	}
	io.Close(nil) // closes every namespace's adapter, which closes the builder
	ctx, cancel := context.WithTimeout(context.Background(), sqsadapter.DefaultShutdownTimeout)
	defer cancel()
	// Close is idempotent: this waits for the close io.Close started and returns its result.
	if err := builder.Close(ctx); err != nil {
		return fmt.Errorf("%s: closing the adapter: %w", n.name, err)
	}
	n.log.Info("chat: node stopped: unsubscribed and deleted its queue", "stats", fmt.Sprintf("%+v", builder.Stats()))
	return nil
}

func (n *chatNode) closeHTTP() {
	// Close, not Shutdown: the websockets of stopped nodes are already closed, and a page
	// polling for a reconnect must not hold up the exit.
	_ = n.http.Close()
}

func (n *chatNode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.io != nil
}

func (n *chatNode) server() *socket.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.io
}

func (n *chatNode) describe() string {
	io := n.server()
	if io == nil {
		return fmt.Sprintf("%s  %s  down", n.name, n.url)
	}
	return fmt.Sprintf("%s  %s  up, ServerCount %d, %d clients", n.name, n.url,
		io.Sockets().Adapter().ServerCount(), io.Sockets().Sockets().Len())
}

// serveSocketIO hands Socket.IO requests to the running server, or says the node is down; the
// page's socket.io-client then tries the other nodes in turn.
func (n *chatNode) serveSocketIO(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	engine := n.engine
	n.mu.Unlock()
	if engine == nil {
		http.Error(w, n.name+" is stopped", http.StatusServiceUnavailable)
		return
	}
	engine.ServeHTTP(w, r)
}

// serveNodes tells the page which node served it and which nodes this demo started.
func (n *chatNode) serveNodes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"self": n.name, "nodes": n.c.configured(), "topic": n.c.topic})
}

// serveNodeAction stops or starts a node of this process: the demo's control panel (no
// authentication; the nodes listen on loopback).
func (n *chatNode) serveNodeAction(w http.ResponseWriter, r *http.Request) {
	target := n.c.node(r.PathValue("node"))
	if target == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such node"})
		return
	}
	var err error
	switch r.PathValue("action") {
	case "stop":
		n.log.Info("chat: stop requested from a page", "target", target.name)
		err = target.stop()
	case "start":
		n.log.Info("chat: start requested from a page", "target", target.name)
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		err = target.start(ctx)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "actions are stop and start"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": target.name, "up": target.running()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var (
	channelRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,23}$`)
	nameRe    = regexp.MustCompile(`[^\p{L}\p{N}_ .-]`)
)

const maxText = 500

// channelRoom is the Socket.IO room of a channel; the prefix keeps channels apart from the
// room every socket has under its own id.
func channelRoom(ch string) socket.Room { return socket.Room("#" + ch) }

// handle registers the chat's events on a new Socket.IO server.
func (n *chatNode) handle(io *socket.Server) {
	// The cluster view: every node answers this serverSideEmit with its own view of the cluster.
	_ = io.Sockets().On("status", func(args ...any) { reply(args, n.status(io)) })

	_ = io.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		name := cleanName(s.Handshake().Auth["name"])
		// A recovered socket has its rooms and data back already; its node may have changed.
		s.SetData(map[string]any{"name": name, "node": n.name})
		n.log.Debug("chat: connected", "user", name, "socket", s.Id(), "recovered", s.Recovered())
		_ = s.Emit("welcome", map[string]any{"node": n.name, "name": name})
		event := "joined the chat"
		if s.Recovered() {
			event = "is back (connection recovered)"
		}
		io.Emit("presence", map[string]any{"event": event, "name": name, "node": n.name})

		_ = s.On("chat", func(args ...any) {
			msg, _ := arg[map[string]any](args, 0)
			text, _ := msg["text"].(string)
			text = strings.TrimSpace(text)
			if utf8.RuneCountInString(text) > maxText {
				text = string([]rune(text)[:maxText])
			}
			channel, _ := msg["channel"].(string)
			if text == "" {
				reply(args, map[string]any{"error": "empty message"})
				return
			}
			out := map[string]any{"name": name, "node": n.name, "channel": channel, "text": text, "at": time.Now().UnixMilli()}
			if channel == "" {
				io.Emit("chat", out) // every client of every node
			} else {
				if !s.Rooms().Has(channelRoom(channel)) {
					reply(args, map[string]any{"error": "join #" + channel + " first"})
					return
				}
				_ = io.To(channelRoom(channel)).Emit("chat", out) // that room, on every node
			}
			reply(args, map[string]any{"ok": true})
		})

		_ = s.On("join", func(args ...any) {
			ch, _ := arg[string](args, 0)
			if !channelRe.MatchString(ch) {
				reply(args, map[string]any{"error": "channel names are 1-24 of a-z, 0-9, - and _"})
				return
			}
			s.Join(channelRoom(ch))
			reply(args, map[string]any{"ok": true})
			io.Emit("presence", map[string]any{"event": "joined #" + ch, "name": name, "node": n.name})
		})

		_ = s.On("leave", func(args ...any) {
			ch, _ := arg[string](args, 0)
			s.Leave(channelRoom(ch))
			reply(args, map[string]any{"ok": true})
			io.Emit("presence", map[string]any{"event": "left #" + ch, "name": name, "node": n.name})
		})

		// The user list: fetchSockets asks every node of the cluster for its sockets.
		_ = s.On("users", func(args ...any) {
			io.FetchSockets()(func(sockets []*socket.RemoteSocket, err error) {
				if err != nil {
					reply(args, map[string]any{"error": err.Error()})
					return
				}
				reply(args, map[string]any{"users": userList(sockets)})
			})
		})

		// The cluster view: this node's status and every other node's answer to "status".
		_ = s.On("cluster", func(args ...any) {
			self := n.status(io)
			err := io.Sockets().ServerSideEmitWithAck("status")(func(answers []any, err error) {
				nodes := append([]any{self}, answers...)
				res := map[string]any{"self": n.name, "nodes": nodes, "complete": err == nil}
				if err != nil {
					res["error"] = err.Error()
				}
				reply(args, res)
			})
			if err != nil {
				reply(args, map[string]any{"self": n.name, "nodes": []any{self}, "complete": false, "error": err.Error()})
			}
		})

		_ = s.On("disconnect", func(...any) {
			n.log.Debug("chat: disconnected", "user", name, "socket", s.Id())
			if n.server() == io { // not while this node is stopping: its adapter is closing
				io.Emit("presence", map[string]any{"event": "left the chat", "name": name, "node": n.name})
			}
		})
	})
}

// status is what a node says about itself in the cluster view.
func (n *chatNode) status(io *socket.Server) map[string]any {
	n.mu.Lock()
	started := n.started
	n.mu.Unlock()
	return map[string]any{
		"name":        n.name,
		"url":         n.url,
		"serverCount": io.Sockets().Adapter().ServerCount(),
		"clients":     io.Sockets().Sockets().Len(),
		"upSince":     started.UnixMilli(),
	}
}

type user struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Node     string   `json:"node"`
	Channels []string `json:"channels"`
}

// userList turns fetchSockets' answer (this node's sockets and the other nodes') into users.
func userList(sockets []*socket.RemoteSocket) []user {
	users := make([]user, 0, len(sockets))
	for _, s := range sockets {
		u := user{ID: string(s.Id()), Name: field(s.Data(), "name"), Node: field(s.Data(), "node"), Channels: []string{}}
		for _, r := range s.Rooms().Keys() {
			if ch, ok := strings.CutPrefix(string(r), "#"); ok {
				u.Channels = append(u.Channels, ch)
			}
		}
		slices.Sort(u.Channels)
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b user) int {
		return strings.Compare(a.Name+"\x00"+a.Node+"\x00"+a.ID, b.Name+"\x00"+b.Node+"\x00"+b.ID)
	})
	return users
}

// field reads a string from a socket's data: a map here, a decoded map from another node.
func field(data any, key string) string {
	switch d := data.(type) {
	case map[string]any:
		s, _ := d[key].(string)
		return s
	case map[any]any:
		s, _ := d[key].(string)
		return s
	}
	return ""
}

func cleanName(v any) string {
	s, _ := v.(string)
	s = strings.TrimSpace(nameRe.ReplaceAllString(s, ""))
	if r := []rune(s); len(r) > 24 {
		s = string(r[:24])
	}
	if s == "" {
		s = fmt.Sprintf("guest-%04d", time.Now().UnixNano()%10000)
	}
	return s
}

// arg returns args[i] as a T.
func arg[T any](args []any, i int) (T, bool) {
	var zero T
	if i >= len(args) {
		return zero, false
	}
	v, ok := args[i].(T)
	return v, ok
}

// reply answers an event whose client asked for an acknowledgement (its last argument).
func reply(args []any, v any) {
	if len(args) == 0 {
		return
	}
	if ack, ok := args[len(args)-1].(socket.Ack); ok {
		ack([]any{v}, nil)
	}
}
