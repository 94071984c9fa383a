package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPU accounting from /proc (Linux), to show where the CPU went during a step: the emulator
// (one Node process: it serves both sides), this process (the Go servers and every client on
// the Go side, the clients only on the Node side), the Node peers, and everything else on the
// machine (other people's work on a shared machine).

const clockTicks = 100 // USER_HZ on Linux

type cpuPIDs struct {
	emulator int
	peers    []int
}

type cpuSample struct {
	at                      time.Time
	emulator, self, peers   float64 // CPU seconds
	peerEach                []float64
	machineBusy, machineAll float64 // jiffies, all CPUs
}

// cpuUse is CPU use over a window, in percent of one core; Others is what the machine spent
// outside the benchmark's processes.
type cpuUse struct {
	Emulator float64 `json:"emulator_pct"`
	Bench    float64 `json:"bench_process_pct"`
	Peers    float64 `json:"node_peers_pct"`
	// PeerEach is Peers by peer, the emitting peer (node 0) first.
	PeerEach []float64 `json:"node_peers_each_pct,omitempty"`
	Others   float64   `json:"other_processes_pct"`
	Cores    int       `json:"cores"`
}

func sampleCPU(p cpuPIDs) cpuSample {
	s := cpuSample{at: time.Now(), self: procCPU(os.Getpid())}
	if p.emulator > 0 {
		s.emulator = procCPU(p.emulator)
	}
	for _, pid := range p.peers {
		v := procCPU(pid)
		s.peers += v
		s.peerEach = append(s.peerEach, v)
	}
	s.machineBusy, s.machineAll = machineJiffies()
	return s
}

func cpuBetween(a, b cpuSample, cores int) cpuUse {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return cpuUse{}
	}
	pct := func(v float64) float64 { return round1(v / wall * 100) }
	u := cpuUse{Emulator: pct(b.emulator - a.emulator), Bench: pct(b.self - a.self), Peers: pct(b.peers - a.peers), Cores: cores}
	for i := range b.peerEach {
		if i < len(a.peerEach) {
			u.PeerEach = append(u.PeerEach, pct(b.peerEach[i]-a.peerEach[i]))
		}
	}
	if all := b.machineAll - a.machineAll; all > 0 {
		busyCores := (b.machineBusy - a.machineBusy) / all * float64(cores) // cores' worth of busy time
		u.Others = round1(max(0, busyCores*100-u.Emulator-u.Bench-u.Peers))
	}
	return u
}

// procCPU returns the user+system CPU seconds of pid, 0 if it is gone.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

func machineJiffies() (busy, all float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i == 7 || i == 8 { // guest time is already in user
			continue
		}
		all += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, all
}

// emulatorPID finds the process listening on AWS_ENDPOINT_URL's loopback port, or 0.
func emulatorPID() int {
	u, err := url.Parse(os.Getenv("AWS_ENDPOINT_URL"))
	if err != nil || u.Port() == "" {
		return 0
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, tab := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(tab)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // LISTEN
				continue
			}
			if _, hexPort, ok := strings.Cut(f[1], ":"); ok {
				if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
					inodes["socket:["+f[9]+"]"] = true
				}
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && inodes[target] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}
