package sqsadapter_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// The program of the README's Usage section is examples/usage/main.go, byte for byte, so that
// `go build ./...` and `go vet ./...` compile what users paste. Edit one, then copy it to the other.
func TestReadmeUsageIsExamplesUsage(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	snippet, err := firstGoBlock(readme, "## Usage")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	const path = "examples/usage/main.go"
	program, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(snippet, program) {
		return
	}
	a, b := bytes.Split(snippet, []byte("\n")), bytes.Split(program, []byte("\n"))
	for i := range max(len(a), len(b)) {
		var la, lb []byte
		if i < len(a) {
			la = a[i]
		}
		if i < len(b) {
			lb = b[i]
		}
		if i >= len(a) || i >= len(b) || !bytes.Equal(la, lb) {
			t.Fatalf("the README's Usage program and %s differ from line %d of the program:\nREADME: %q\n%s: %q",
				path, i+1, la, path, lb)
		}
	}
}

// firstGoBlock returns the content of the first ```go block after the line heading (a section
// heading line, matched whole), up to the next heading of that level.
func firstGoBlock(md []byte, heading string) ([]byte, error) {
	lines := bytes.SplitAfter(md, []byte("\n"))
	i := 0
	for i < len(lines) && string(bytes.TrimRight(lines[i], "\r\n")) != heading {
		i++
	}
	if i == len(lines) {
		return nil, errors.New("no line " + heading)
	}
	level := bytes.IndexByte([]byte(heading), ' ') // "## " -> 2
	for i++; i < len(lines); i++ {
		line := bytes.TrimRight(lines[i], "\r\n")
		if bytes.HasPrefix(line, bytes.Repeat([]byte("#"), level)) && len(line) > level && line[level] == ' ' {
			break // the next section
		}
		if string(line) != "```go" {
			continue
		}
		var block []byte
		for i++; i < len(lines); i++ {
			if string(bytes.TrimRight(lines[i], "\r\n")) == "```" {
				return block, nil
			}
			block = append(block, lines[i]...)
		}
		return nil, errors.New("the ```go block of " + heading + " is not closed")
	}
	return nil, errors.New("no ```go block in " + heading)
}
