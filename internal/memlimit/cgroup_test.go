package memlimit

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestCgroupLimit(t *testing.T) {
	tests := map[string]struct {
		files       map[string]string
		want        uint64
		wantVersion int
		wantFile    string
		wantErr     bool
	}{
		"v2 container (cgroup namespace: its cgroup is the mount's root)": {
			files: map[string]string{
				"proc/self/cgroup":                 "0::/\n",
				"sys/fs/cgroup/cgroup.controllers": "cpu memory pids\n",
				"sys/fs/cgroup/memory.max":         "1073741824\n",
			},
			want: 1 << 30, wantVersion: 2, wantFile: "sys/fs/cgroup/memory.max",
		},
		"v2 nested: the smallest limit up the tree wins": {
			files: map[string]string{
				"proc/self/cgroup":                           "0::/kubepods/pod1/ctr\n",
				"sys/fs/cgroup/cgroup.controllers":           "memory\n",
				"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max\n",
				"sys/fs/cgroup/kubepods/pod1/memory.max":     "536870912\n",
				"sys/fs/cgroup/kubepods/memory.max":          "2147483648\n",
			},
			want: 512 << 20, wantVersion: 2, wantFile: "sys/fs/cgroup/kubepods/pod1/memory.max",
		},
		"v2 unlimited": {
			files: map[string]string{
				"proc/self/cgroup":                 "0::/\n",
				"sys/fs/cgroup/cgroup.controllers": "memory\n",
				"sys/fs/cgroup/memory.max":         "max\n",
			},
			want: 0, wantVersion: 2,
		},
		"v1 container: the path is not under the mount, the mount's own file is the container's": {
			files: map[string]string{
				"proc/self/cgroup":                           "12:pids:/kubepods/burstable/pod1/abc\n4:memory:/kubepods/burstable/pod1/abc\n0::/\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456\n",
			},
			want: 256 << 20, wantVersion: 1, wantFile: "sys/fs/cgroup/memory/memory.limit_in_bytes",
		},
		"v1 with controllers joined on one line": {
			files: map[string]string{
				"proc/self/cgroup": "3:cpu,memory:/a\n",
				"sys/fs/cgroup/memory/a/memory.limit_in_bytes": "104857600\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes":   "9223372036854771712\n",
			},
			want: 100 << 20, wantVersion: 1, wantFile: "sys/fs/cgroup/memory/a/memory.limit_in_bytes",
		},
		"v1 unlimited (the largest page-aligned int64)": {
			files: map[string]string{
				"proc/self/cgroup":                           "4:memory:/\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
			},
			want: 0, wantVersion: 1,
		},
		"hybrid: v2 mounted elsewhere, memory is a v1 controller": {
			files: map[string]string{
				"proc/self/cgroup": "4:memory:/x\n0::/x\n",
				"sys/fs/cgroup/memory/x/memory.limit_in_bytes": "1048576\n",
			},
			want: 1 << 20, wantVersion: 1, wantFile: "sys/fs/cgroup/memory/x/memory.limit_in_bytes",
		},
		"no /proc (not Linux)": {files: map[string]string{}},
		"a limit that is no number": {
			files: map[string]string{
				"proc/self/cgroup":                 "0::/\n",
				"sys/fs/cgroup/cgroup.controllers": "memory\n",
				"sys/fs/cgroup/memory.max":         "lots\n",
			},
			wantErr: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			for p, content := range tc.files {
				f := filepath.Join(root, p)
				if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, src, err := CgroupLimit(root)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got != tc.want || src.Version != tc.wantVersion {
				t.Errorf("limit %d (cgroup v%d), want %d (v%d)", got, src.Version, tc.want, tc.wantVersion)
			}
			wantFile := ""
			if tc.wantFile != "" {
				wantFile = filepath.Join(root, tc.wantFile)
			}
			if src.File != wantFile {
				t.Errorf("read from %q, want %q", src.File, wantFile)
			}
		})
	}
}

// TestThisProcess reads the real files: whatever the machine's cgroups
// say, the reading must not fail, and the figures must be plausible.
func TestThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc and /sys/fs/cgroup")
	}
	if _, _, err := CgroupLimit("/"); err != nil {
		t.Fatal(err)
	}
	rss, ok, err := ResidentBytes()
	if err != nil || !ok || rss < 1<<20 {
		t.Fatalf("resident %d bytes, ok %v, err %v", rss, ok, err)
	}
	g := ReadGo()
	if g.Mapped < g.HeapInUse || g.HeapInUse == 0 {
		t.Fatalf("the Go runtime maps %d bytes with %d of heap in use", g.Mapped, g.HeapInUse)
	}
}
