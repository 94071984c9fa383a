package nodepeer

// The JSON-lines protocol with peer.js: commands and their replies, and asynchronous events.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// Event is one asynchronous line from the peer, {"event":"<Name>",...}.
type Event struct {
	Name   string
	Raw    json.RawMessage
	Fields map[string]json.RawMessage
}

// Get unmarshals field key into v.
func (e Event) Get(key string, v any) error {
	raw, ok := e.Fields[key]
	if !ok {
		return fmt.Errorf("nodepeer: event %q has no field %q", e.Name, key)
	}
	return json.Unmarshal(raw, v)
}

// Str returns field key as a string ("" if absent or not a string).
func (e Event) Str(key string) string {
	var s string
	_ = e.Get(key, &s)
	return s
}

// Value returns field key decoded with FromWire (nil if absent).
func (e Event) Value(key string) any {
	raw, ok := e.Fields[key]
	if !ok {
		return nil
	}
	v, _ := Decode(raw)
	return v
}

type reply struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// read dispatches stdout lines until EOF, then reaps the process.
func (p *Peer) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for sc.Scan() {
		p.dispatch(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(p.stderr, "nodepeer: reading stdout: %v\n", err)
		_, _ = io.Copy(io.Discard, stdout)
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exited = true
	p.exitErr = err
	for id, ch := range p.pending {
		close(ch)
		delete(p.pending, id)
	}
	p.notifyLocked()
	p.mu.Unlock()
	close(p.done)
}

func (p *Peer) dispatch(line []byte) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		fmt.Fprintf(p.stderr, "nodepeer: stdout line that is not JSON: %s\n", line)
		return
	}
	if rawID, ok := fields["id"]; ok {
		if _, isReply := fields["ok"]; isReply {
			var id int64
			var r reply
			if json.Unmarshal(rawID, &id) == nil && json.Unmarshal(line, &r) == nil {
				p.mu.Lock()
				ch := p.pending[id]
				delete(p.pending, id)
				p.mu.Unlock()
				if ch != nil {
					ch <- r
				}
				return
			}
		}
	}
	ev := Event{Raw: append(json.RawMessage(nil), line...), Fields: fields}
	_ = json.Unmarshal(fields["event"], &ev.Name)
	p.mu.Lock()
	p.events = append(p.events, ev)
	p.notifyLocked()
	p.mu.Unlock()
}

func (p *Peer) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Call sends command cmd with the fields in args and waits for its reply.
// It returns the reply's result, or an error carrying the peer's message
// when the reply says ok:false. args may be nil; values in it go through
// ToWire, so []byte and time.Time may be used directly.
func (p *Peer) Call(ctx context.Context, cmd string, args map[string]any) (json.RawMessage, error) {
	msg := make(map[string]any, len(args)+2)
	for k, v := range args {
		if k == "id" || k == "cmd" {
			return nil, fmt.Errorf("nodepeer: %s: field %q is reserved for the protocol", cmd, k)
		}
		msg[k] = ToWire(v)
	}
	id := p.nextID.Add(1)
	msg["id"] = id
	msg["cmd"] = cmd
	line, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("nodepeer: %s: %w", cmd, err)
	}
	ch := make(chan reply, 1)
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		return nil, fmt.Errorf("nodepeer: %s: %s has exited (%v)", cmd, p.name, p.exitErr)
	}
	p.pending[id] = ch
	p.mu.Unlock()

	p.writeMu.Lock()
	_, err = p.stdin.Write(append(line, '\n'))
	p.writeMu.Unlock()
	if err != nil {
		p.forget(id)
		return nil, fmt.Errorf("nodepeer: %s: write: %w", cmd, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("nodepeer: %s: %s exited before answering (%v)", cmd, p.name, p.exitError())
		}
		if !r.OK {
			return nil, fmt.Errorf("nodepeer: %s: %s", cmd, r.Error)
		}
		return r.Result, nil
	case <-ctx.Done():
		p.forget(id)
		return nil, fmt.Errorf("nodepeer: %s: %w", cmd, ctx.Err())
	}
}

// CallInto is Call followed by json.Unmarshal of the result into out.
func (p *Peer) CallInto(ctx context.Context, cmd string, args map[string]any, out any) error {
	res, err := p.Call(ctx, cmd, args)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(res, out); err != nil {
		return fmt.Errorf("nodepeer: %s: result %s: %w", cmd, abbreviate(res), err)
	}
	return nil
}

func (p *Peer) forget(id int64) {
	p.mu.Lock()
	delete(p.pending, id)
	p.mu.Unlock()
}

func (p *Peer) exitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// WaitEvent returns the first buffered or future event for which match
// returns true, and removes it from the buffer, so that each event is
// returned once. Events that do not match stay buffered for later calls.
func (p *Peer) WaitEvent(ctx context.Context, match func(Event) bool) (Event, error) {
	for {
		p.mu.Lock()
		for i, ev := range p.events {
			if match(ev) {
				p.events = append(p.events[:i:i], p.events[i+1:]...)
				p.mu.Unlock()
				return ev, nil
			}
		}
		if p.exited {
			err := p.exitErr
			p.mu.Unlock()
			return Event{}, fmt.Errorf("nodepeer: %s exited (%v) before the awaited event", p.name, err)
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("nodepeer: %s: waiting for an event: %w", p.name, ctx.Err())
		}
	}
}

// Events returns a copy of the buffered events not yet taken by WaitEvent.
func (p *Peer) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}
