package host

import (
	"github.com/go-logr/logr"

	"github.com/troupe-dev/troupe/internal/kubeenv"
)

// redactingSink hides the values of an actor's Secrets in the log lines the
// actor writes through the host's logger: a guest that logs a secret does
// not get it into the host's log. (The chain's LogEvent is the runtime
// handler's to redact.)
type redactingSink struct {
	logr.LogSink
	env *kubeenv.Env
}

func (s *redactingSink) Info(level int, msg string, kv ...any) {
	s.LogSink.Info(level, s.env.Redact(msg), s.values(kv)...)
}

func (s *redactingSink) Error(err error, msg string, kv ...any) {
	if err != nil {
		err = redactedError{msg: s.env.Redact(err.Error())}
	}
	s.LogSink.Error(err, s.env.Redact(msg), s.values(kv)...)
}

func (s *redactingSink) WithValues(kv ...any) logr.LogSink {
	return &redactingSink{LogSink: s.LogSink.WithValues(s.values(kv)...), env: s.env}
}

func (s *redactingSink) WithName(name string) logr.LogSink {
	return &redactingSink{LogSink: s.LogSink.WithName(name), env: s.env}
}

// values redacts the string values of key-value pairs.
func (s *redactingSink) values(kv []any) []any {
	var out []any
	for i, v := range kv {
		str, ok := v.(string)
		if !ok || i%2 == 0 {
			continue
		}
		if r := s.env.Redact(str); r != str {
			if out == nil {
				out = append([]any(nil), kv...)
			}
			out[i] = r
		}
	}
	if out == nil {
		return kv
	}
	return out
}

type redactedError struct{ msg string }

func (e redactedError) Error() string { return e.msg }
