package sqsadapter

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOptionsHeartbeatTimeoutDefaultsToTwiceTheInterval(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		opts                      *Options
		wantInterval, wantTimeout time.Duration
	}{
		{"nil options", nil, 5 * time.Second, 10 * time.Second},
		{"both unset", &Options{}, DefaultHeartbeatInterval, DefaultHeartbeatTimeout},
		{"only the interval", &Options{HeartbeatInterval: 20 * time.Second}, 20 * time.Second, 40 * time.Second},
		{"a short interval alone", &Options{HeartbeatInterval: 500 * time.Millisecond}, 500 * time.Millisecond, time.Second},
		{"explicit timeout kept", &Options{HeartbeatInterval: 20 * time.Second, HeartbeatTimeout: 25 * time.Second}, 20 * time.Second, 25 * time.Second},
		{"only the timeout", &Options{HeartbeatTimeout: 30 * time.Second}, 5 * time.Second, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts.withDefaults()
			if o.HeartbeatInterval != tc.wantInterval || o.HeartbeatTimeout != tc.wantTimeout {
				t.Fatalf("interval %v, timeout %v; want %v, %v",
					o.HeartbeatInterval, o.HeartbeatTimeout, tc.wantInterval, tc.wantTimeout)
			}
			if err := o.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
		})
	}
	if DefaultHeartbeatTimeout != 2*DefaultHeartbeatInterval {
		t.Fatalf("DefaultHeartbeatTimeout %v is not twice DefaultHeartbeatInterval %v", DefaultHeartbeatTimeout, DefaultHeartbeatInterval)
	}
}

func TestOptionsHeartbeatTimeoutStillCheckedWhenSet(t *testing.T) {
	// An explicit timeout is never raised to fit the interval: a mistake is reported.
	o := (&Options{HeartbeatInterval: 20 * time.Second, HeartbeatTimeout: 10 * time.Second}).withDefaults()
	if err := o.validate(); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "HeartbeatTimeout") {
		t.Fatalf("validate: %v, want ErrInvalidOptions about HeartbeatTimeout", err)
	}
	// A negative interval is reported as such, not hidden by a derived timeout.
	o = (&Options{HeartbeatInterval: -time.Second}).withDefaults()
	if err := o.validate(); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "HeartbeatInterval is negative") {
		t.Fatalf("validate: %v, want ErrInvalidOptions: HeartbeatInterval is negative", err)
	}
}
