//go:build !wasip1

package theater

// Outside wasip1 there is no host to call. Actor code still compiles, so vet,
// gopls and `go build ./...` work on it; calls that can report an error
// return ErrNotWasm, the others panic with its message.

func getString(stringFunc) string            { panic(ErrNotWasm.Error()) }
func currentTime() uint64                    { panic(ErrNotWasm.Error()) }
func getEnv(string) (string, bool)           { panic(ErrNotWasm.Error()) }
func logMessage(string, string) error        { return ErrNotWasm }
func recordMetric(string, float64) error     { return ErrNotWasm }
func recordEvent(string, []byte) error       { return ErrNotWasm }
func systemInfo() SystemInfo                 { panic(ErrNotWasm.Error()) }
func shutdown([]byte) error                  { return ErrNotWasm }
func send(string, []byte) error              { return ErrNotWasm }
func request(string, []byte) ([]byte, error) { return nil, ErrNotWasm }
