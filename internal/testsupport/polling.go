package testsupport

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ConnectPolling connects one Socket.IO socket to namespace "/" of the server at url with two
// plain HTTP requests over Engine.IO long-polling: the handshake (with headers, when not nil),
// then the CONNECT packet with auth (a JSON object, or "" for none). Nothing polls afterwards:
// the server keeps the socket until its ping timeout. It is the cheapest honest way to give a
// server thousands of sockets.
func ConnectPolling(ctx context.Context, client *http.Client, url string, headers map[string]string, auth string) error {
	base := url + "/socket.io/?EIO=4&transport=polling"
	open, err := httpDo(ctx, client, http.MethodGet, base, "", headers)
	if err != nil {
		return err
	}
	// The open packet: 0{"sid":"...",...}
	_, rest, ok := strings.Cut(open, `"sid":"`)
	sid, _, _ := strings.Cut(rest, `"`)
	if !ok || sid == "" {
		return fmt.Errorf("handshake answered %q", open)
	}
	_, err = httpDo(ctx, client, http.MethodPost, base+"&sid="+sid, "40"+auth, map[string]string{"Content-Type": "text/plain;charset=UTF-8"})
	return err
}

func httpDo(ctx context.Context, client *http.Client, method, url, body string, headers map[string]string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s %s", method, url, res.Status, b)
	}
	return string(b), err
}
