package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

func TestParseEnvAssignments(t *testing.T) {
	tests := map[string]struct {
		in      []string
		want    runtimehandler.MapEnv
		wantErr string
	}{
		"none":         {in: nil, want: runtimehandler.MapEnv{}},
		"simple":       {in: []string{"A=1", "B=two words"}, want: runtimehandler.MapEnv{"A": {Value: "1"}, "B": {Value: "two words"}}},
		"empty value":  {in: []string{"A="}, want: runtimehandler.MapEnv{"A": {Value: ""}}},
		"equals kept":  {in: []string{"URL=a=b=c"}, want: runtimehandler.MapEnv{"URL": {Value: "a=b=c"}}},
		"later wins":   {in: []string{"A=1", "A=2"}, want: runtimehandler.MapEnv{"A": {Value: "2"}}},
		"no equals":    {in: []string{"A"}, wantErr: `env assignment "A": want NAME=VALUE`},
		"empty name":   {in: []string{"=1"}, wantErr: "env name is empty"},
		"NUL in name":  {in: []string{"A\x00B=1"}, wantErr: "contains '=' or NUL"},
		"invalid UTF8": {in: []string{"A\xff=1"}, wantErr: "not valid UTF-8"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseEnvAssignments(tc.in)
			// An error case wants no map (nil), so one comparison each.
			if (err != nil) != (tc.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "actor.env")
	content := "# comment\n\nGREETING=hello world\nexport FLAG=on\nQUOTED=\"with spaces\"\nSINGLE='x'\nHALF=\"open\nURL=a=b\n  SPACED = v\r\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := runtimehandler.MapEnv{
		"GREETING": {Value: "hello world"}, "FLAG": {Value: "on"}, "QUOTED": {Value: "with spaces"}, "SINGLE": {Value: "x"},
		"HALF": {Value: `"open`}, "URL": {Value: "a=b"}, "SPACED": {Value: " v"},
	}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	bad := filepath.Join(t.TempDir(), "bad.env")
	if err := os.WriteFile(bad, []byte("OK=1\nnot an assignment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readEnvFile(bad); err == nil || !strings.Contains(err.Error(), "bad.env:2: want NAME=VALUE") {
		t.Fatalf("got %v", err)
	}
	if _, err := readEnvFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file read")
	}
}
