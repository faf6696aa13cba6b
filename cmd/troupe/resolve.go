package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/actorspec"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// runSpec is what `troupe run` resolved from ACTOR and the flags.
type runSpec struct {
	wasm []byte
	// cfg holds the engine settings from the spec (actorspec) with the
	// flags applied; the caller adds the component, directory, env and
	// logger, and decides the tick interval (tickInterval).
	cfg      actorhost.ActorConfig
	env      runtimehandler.MapEnv
	warnings []string
}

// wasmMagic starts every WebAssembly binary.
var wasmMagic = []byte("\x00asm")

// resolveRun reads ACTOR (a module or an Actor YAML) and merges the flags.
func resolveRun(o *runOptions, actorPath string) (*runSpec, error) {
	if o.timeout < 0 {
		return nil, usageError("--timeout %s: want a positive duration", o.timeout)
	}
	wasm, actor, err := readActor(actorPath)
	if err != nil {
		return nil, err
	}
	spec := &runSpec{wasm: wasm}
	if actor == nil {
		// A bare module: the spec's defaults, as for a YAML that sets
		// nothing.
		actor = &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{
			Name: strings.TrimSuffix(filepath.Base(actorPath), filepath.Ext(actorPath)),
		}}
	}
	if spec.cfg, err = actorspec.EngineConfig(actor); err != nil {
		return nil, usageError("%s: %w", actorPath, err)
	}
	if o.name != "" {
		spec.cfg.Name = o.name
	}
	if spec.cfg.Name == "" {
		spec.cfg.Name = "actor"
	}
	if o.timeout > 0 {
		spec.cfg.CallTimeout = o.timeout
	}
	if spec.env, spec.warnings, err = resolveEnv(o, &actor.Spec); err != nil {
		return nil, usageError("%s: %w", actorPath, err)
	}
	return spec, nil
}

// readActor reads ACTOR: a module's bytes, or an Actor YAML (parsed,
// validated) and the module its spec.component.path names.
func readActor(path string) ([]byte, *v1alpha1.Actor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, usageError("reading %s: %w", path, err)
	}
	switch {
	case bytes.HasPrefix(raw, wasmMagic):
		return raw, nil, nil
	case isWAT(raw):
		return nil, nil, usageError("%s is WebAssembly text (WAT), not a binary module: compile it first, e.g. with wat2wasm from wabt", path)
	case strings.HasSuffix(path, ".wasm"):
		return nil, nil, usageError("%s is not a WebAssembly module: it does not start with the \\0asm header", path)
	}
	actor, err := v1alpha1.ParseActor(raw)
	if err != nil {
		if why := notAnActor(raw); why != "" {
			return nil, nil, usageError("%s is neither a WebAssembly module (no \\0asm header) nor an Actor YAML (%s)", path, why)
		}
		return nil, nil, usageError("%s: %w", path, err)
	}
	if err := actor.Validate(v1alpha1.ValidationOptions{AllowPath: true}); err != nil {
		return nil, nil, usageError("%s: %w", path, err)
	}
	wasm, err := readComponent(path, &actor.Spec.Component)
	return wasm, actor, err
}

// readComponent reads the module an Actor YAML at yamlPath names.
func readComponent(yamlPath string, src *v1alpha1.ComponentSource) ([]byte, error) {
	if src.Kind() != v1alpha1.SourcePath {
		return nil, usageError("%s: spec.component.%s: troupe run reads only a local module (spec.component.path); download it and point path at it, or pass the .wasm file", yamlPath, src.Kind())
	}
	path := src.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(yamlPath), path)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		hint := ""
		if errors.Is(err, os.ErrNotExist) {
			hint = " (for the examples, run `make examples` first)"
		}
		return nil, usageError("%s: spec.component.path: %w%s", yamlPath, err, hint)
	}
	if src.SHA256 != "" {
		sum := sha256.Sum256(wasm)
		if got := hex.EncodeToString(sum[:]); got != src.SHA256 {
			return nil, usageError("%s: spec.component.sha256 pins %s, but %s has %s", yamlPath, src.SHA256, path, got)
		}
	}
	return wasm, nil
}

// isWAT reports whether b looks like WebAssembly text: after blanks and
// ;; comments, a module or component s-expression.
func isWAT(b []byte) bool {
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		if !bytes.HasPrefix(b, []byte(";;")) {
			break
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i:]
		} else {
			return false
		}
	}
	return bytes.HasPrefix(b, []byte("(module")) || bytes.HasPrefix(b, []byte("(component"))
}

// notAnActor says why raw is not an Actor YAML at all, or "" when it is a
// YAML object with an apiVersion or a kind: ParseActor's error then says
// what is wrong with it.
func notAnActor(raw []byte) string {
	if !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
		return "it is binary data"
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "not YAML: " + err.Error()
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return "it is not a YAML mapping with apiVersion: " + v1alpha1.GroupVersion.String() + " and kind: Actor"
	}
	if _, hasKind := obj["kind"]; !hasKind {
		if _, hasAPI := obj["apiVersion"]; !hasAPI {
			return "it has no apiVersion and kind"
		}
	}
	return ""
}

// resolveEnv is the env of a local run: the YAML's literal values, then
// --env-file files in order, then --env. Values the YAML reads from a
// ConfigMap or Secret cannot be read without a cluster: an optional one is
// left unset with a warning, a required one must come from the flags.
//
// A flag's value that stands in for a Secret's (a secretKeyRef variable,
// or a name an envFrom secretRef may provide) is marked secret, as the
// cluster's would be: the chain records only that it was read, and the
// runtime handler scrubs it from what the actor logs.
func resolveEnv(o *runOptions, spec *v1alpha1.ActorSpec) (env runtimehandler.MapEnv, warnings []string, err error) {
	declared := runtimehandler.MapEnv{}
	// refs are the variables declared from a ConfigMap or Secret key.
	type ref struct {
		secret, optional bool
		what, field      string
	}
	refs := map[string]ref{}
	for i, ev := range spec.Env {
		field := fmt.Sprintf("spec.env[%d] (%s)", i, ev.Name)
		switch {
		case ev.Value != nil:
			declared[ev.Name] = runtimehandler.EnvValue{Value: *ev.Value}
		case ev.ValueFrom != nil && ev.ValueFrom.SecretKeyRef != nil:
			r := ev.ValueFrom.SecretKeyRef
			refs[ev.Name] = ref{secret: true, optional: r.Optional != nil && *r.Optional,
				what: fmt.Sprintf("key %s of Secret %s", r.Key, r.Name), field: field}
		case ev.ValueFrom != nil && ev.ValueFrom.ConfigMapKeyRef != nil:
			r := ev.ValueFrom.ConfigMapKeyRef
			refs[ev.Name] = ref{optional: r.Optional != nil && *r.Optional,
				what: fmt.Sprintf("key %s of ConfigMap %s", r.Key, r.Name), field: field}
		}
	}
	var errs []string
	// secretPrefixes are the prefixes of the envFrom Secrets: a name with
	// one (every name, for an empty prefix) that spec.env does not declare
	// may be one of that Secret's keys.
	var secretPrefixes []string
	for i, ef := range spec.EnvFrom {
		var what string
		optional := false
		switch {
		case ef.ConfigMapRef != nil:
			what, optional = "ConfigMap "+ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional
		case ef.SecretRef != nil:
			what, optional = "Secret "+ef.SecretRef.Name, ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
			secretPrefixes = append(secretPrefixes, ef.Prefix)
		}
		msg := fmt.Sprintf("spec.envFrom[%d]: troupe run cannot read %s without a cluster", i, what)
		if optional {
			warnings = append(warnings, msg+"; it is optional, so its variables are unset (give them with --env or --env-file)")
		} else {
			errs = append(errs, msg+"; mark it optional: true to run locally, and give the variables you need with --env or --env-file")
		}
	}

	overrides := runtimehandler.MapEnv{}
	for _, path := range o.envFiles {
		m, err := readEnvFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--env-file: %w", err)
		}
		maps.Copy(overrides, m)
	}
	flags, err := parseEnvAssignments(o.env)
	if err != nil {
		return nil, nil, fmt.Errorf("--env: %w", err)
	}
	maps.Copy(overrides, flags)

	for name, v := range overrides {
		if r, ok := refs[name]; ok {
			v.Secret = r.secret
		} else if _, literal := declared[name]; !literal {
			v.Secret = slices.ContainsFunc(secretPrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
		}
		overrides[name] = v
	}
	for name, r := range refs {
		if _, ok := overrides[name]; ok {
			continue
		}
		msg := fmt.Sprintf("%s reads %s, which troupe run cannot read without a cluster", r.field, r.what)
		if r.optional {
			warnings = append(warnings, msg+"; it is optional, so it is unset (give it with --env or --env-file)")
		} else {
			errs = append(errs, msg+"; give it with --env "+name+"=VALUE or --env-file")
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return nil, nil, errors.New(strings.Join(errs, "\n  "))
	}
	slices.Sort(warnings)
	maps.Copy(declared, overrides)
	return declared, warnings, nil
}
