package nodepeer

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// The JSON convention of the peer protocol and of testdata's wire vectors:
// {"$bin":"<hex>"} is a Node Buffer, {"$date":"<ISO 8601>"} a Node Date.

// isoMillis is the layout of JavaScript's Date.prototype.toISOString.
const isoMillis = "2006-01-02T15:04:05.000Z"

// Bin is a byte string that marshals as {"$bin":"<hex>"}.
type Bin []byte

// MarshalJSON implements json.Marshaler.
func (b Bin) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"$bin": hex.EncodeToString(b)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *Bin) UnmarshalJSON(data []byte) error {
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("nodepeer: $bin: %w", err)
	}
	s, ok := m["$bin"]
	if !ok || len(m) != 1 {
		return fmt.Errorf("nodepeer: not a $bin value: %s", data)
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("nodepeer: $bin: %w", err)
	}
	*b = raw
	return nil
}

// Date is a time that marshals as {"$date":"<ISO 8601, UTC, milliseconds>"}.
// JavaScript dates have millisecond precision: finer parts are truncated.
type Date time.Time

// MarshalJSON implements json.Marshaler.
func (d Date) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"$date": time.Time(d).UTC().Format(isoMillis)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Date) UnmarshalJSON(data []byte) error {
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("nodepeer: $date: %w", err)
	}
	s, ok := m["$date"]
	if !ok || len(m) != 1 {
		return fmt.Errorf("nodepeer: not a $date value: %s", data)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("nodepeer: $date: %w", err)
	}
	*d = Date(t)
	return nil
}

// ToWire returns v with every []byte (not Bin) replaced by Bin and every
// time.Time by Date, looking inside maps with string keys, slices and arrays.
// Other values, structs included, are returned as they are (give them Bin and
// Date fields, or convert them to maps first).
func ToWire(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case Bin, Date, json.RawMessage:
		return x
	case []byte:
		return Bin(x)
	case time.Time:
		return Date(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = ToWire(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ToWire(e)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return v
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			out[iter.Key().String()] = ToWire(iter.Value().Interface())
		}
		return out
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return v
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = ToWire(rv.Index(i).Interface())
		}
		return out
	}
	return v
}

// FromWire turns a value decoded by encoding/json into any (maps, slices,
// float64, string, bool, nil) into Go values: {"$bin":..} becomes []byte and
// {"$date":..} time.Time (UTC). Malformed tagged objects stay maps.
func FromWire(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if s, ok := x["$bin"].(string); ok {
				if b, err := hex.DecodeString(s); err == nil {
					return b
				}
			}
			if s, ok := x["$date"].(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					return t.UTC()
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = FromWire(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = FromWire(e)
		}
		return out
	}
	return v
}

// Decode unmarshals raw JSON into any and applies FromWire.
func Decode(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("nodepeer: decode %s: %w", abbreviate(raw), err)
	}
	return FromWire(v), nil
}

func abbreviate(b []byte) string {
	const max = 200
	if len(b) <= max {
		return string(b)
	}
	return string(b[:max]) + "..."
}
