package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds how many YAML nodes one Parse visits, aliases expanded,
// so a small file full of aliases cannot make it run for long. Real
// configs have a few thousand.
const maxNodes = 1 << 17

// Load reads the config file at path and parses it with Parse. An
// unreadable file gives an error wrapping the *fs.PathError, which names
// the path. Defaults are not applied and the config is not validated: see
// LoadValid.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return Parse(path, data)
}

// LoadValid reads the config file at path, applies the defaults and
// validates it: Load, ApplyDefaults and Validate in one call. Its *Errors
// holds the problems of parsing and of validation together, sorted by
// line, so one run shows them all. It returns a nil *Config with any error.
func LoadValid(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return ParseValid(path, data)
}

// ParseValid is LoadValid for a config already in memory; file names it
// in errors and is stored in Config.File.
func ParseValid(file string, data []byte) (*Config, error) {
	c, errs := parse(file, data)
	if c == nil {
		return nil, asError(errs)
	}
	c.ApplyDefaults()
	verrs := c.validate(true)
	// Drop what validation says about fields that failed to parse, or
	// that a misspelled key was meant as: the parse error explains them.
	explained := map[string]bool{}
	for _, pe := range errs {
		explained[pe.Field] = true
	}
	for p := range c.src.misspelled {
		if !c.isSet(p) {
			explained[p] = true
		}
	}
	for _, ve := range verrs {
		ok := true
		for p := ve.Field; p != "" && ok; p = parentPath(p) {
			ok = !explained[p]
		}
		if ok {
			errs = append(errs, ve)
		}
	}
	if len(errs) > 0 {
		return nil, asError(errs)
	}
	return c, nil
}

// Parse decodes a YAML config. file names the config in errors and is
// stored in Config.File; it may be empty. Every problem is reported, each
// with its line, as an *Errors: YAML syntax, an empty file ("empty
// config"), more than one YAML document, unknown keys (with a suggestion
// when a known key is close), duplicate keys, and values of the wrong type.
// Keys starting with "x-" at the top level are ignored, so they can hold
// YAML anchors; merge keys ("<<: *anchor") are supported. Pool.Name is set
// from each pool's key. Parse applies no defaults and does not validate:
// see ApplyDefaults, Validate and ParseValid. It returns a nil *Config with
// any error.
func Parse(file string, data []byte) (*Config, error) {
	c, errs := parse(file, data)
	if len(errs) > 0 {
		return nil, asError(errs)
	}
	return c, nil
}

// parse decodes data, returning the config (nil when there is no YAML tree
// to read it from) and every problem found.
func parse(file string, data []byte) (*Config, []FieldError) {
	fail := func(line int, problem string) (*Config, []FieldError) {
		return nil, []FieldError{newFieldError(file, line, "", problem)}
	}
	root, err := decodeDocument(data)
	var se *syntaxError
	switch {
	case errors.Is(err, io.EOF):
		return fail(0, "empty config")
	case errors.As(err, &se):
		return fail(se.line, se.problem)
	case err != nil:
		return fail(0, err.Error())
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return fail(0, "empty config")
	}
	d := &decoder{file: file, src: &source{lines: map[string]int{}, set: map[string]bool{}, misspelled: map[string]bool{}}, active: map[*yaml.Node]bool{}}
	c := &Config{File: file, src: d.src}
	if root.Kind != yaml.MappingNode {
		return fail(root.Line, fmt.Sprintf("want a mapping of settings at the top level, got %s", describeNode(root)))
	}
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	for name, p := range c.Pools {
		if p != nil {
			p.Name = name
		}
	}
	return c, dedupe(d.errs)
}

// dedupe removes repeated problems, as when a node with a problem is
// used through several aliases; it keeps the first of each.
func dedupe(errs []FieldError) []FieldError {
	seen := map[FieldError]bool{}
	return slices.DeleteFunc(errs, func(e FieldError) bool {
		if seen[e] {
			return true
		}
		seen[e] = true
		return false
	})
}

// syntaxError is a YAML syntax error, with its line when the parser gave
// one.
type syntaxError struct {
	line    int
	problem string
}

func (e *syntaxError) Error() string { return e.problem }

// newSyntaxError converts an error from the YAML parser.
func newSyntaxError(err error) *syntaxError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, problem, ok := strings.Cut(rest, ": ")
		if line, err := strconv.Atoi(num); ok && err == nil {
			return &syntaxError{line: line, problem: "invalid YAML: " + problem}
		}
	}
	return &syntaxError{problem: "invalid YAML: " + msg}
}

// decodeDocument returns the root node of the only YAML document in data,
// io.EOF when there is none, or a *syntaxError. An empty document after
// the first (a trailing "---") is allowed.
func decodeDocument(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// The parser is third-party code fed untrusted input: turn a bug
		// in it into an error rather than a crash.
		if r := recover(); r != nil {
			root, err = nil, &syntaxError{problem: fmt.Sprintf("invalid YAML: the parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, newSyntaxError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, newSyntaxError(err)
	case len(next.Content) == 1 && next.Content[0].Kind == yaml.ScalarNode &&
		next.Content[0].ShortTag() == "!!null" && next.Content[0].Value == "":
		// A trailing "---" and nothing after it.
		var third yaml.Node
		if err := dec.Decode(&third); !errors.Is(err, io.EOF) {
			return nil, &syntaxError{line: third.Line, problem: "more than one YAML document: a config is one document (remove the extra ---)"}
		}
	default:
		return nil, &syntaxError{line: next.Line, problem: "more than one YAML document: a config is one document (remove the extra ---)"}
	}
	if len(doc.Content) == 0 {
		return nil, io.EOF
	}
	return doc.Content[0], nil
}

// source records where the fields of a parsed config were written.
type source struct {
	// lines maps a field path to the line of its key (or list item).
	lines map[string]int
	// set holds the paths of the fields written with a non-null value.
	set map[string]bool
	// misspelled holds the paths of known fields that an unknown key was
	// likely meant as: "listeners" for "listners".
	misspelled map[string]bool
}

// Line returns the line of the config file where field (a path such as
// "pools.app.targets[1].url") was written, or when it was not, the line of
// the nearest enclosing field that was; 0 when none was, or the config was
// not parsed from a file.
func (c *Config) Line(field string) int {
	if c == nil || c.src == nil {
		return 0
	}
	for p := field; p != ""; p = parentPath(p) {
		if l, ok := c.src.lines[p]; ok {
			return l
		}
	}
	return 0
}

// isSet reports whether field was written in the file with a non-null
// value, so that an explicit zero is kept by ApplyDefaults and refused by
// Validate where zero is not allowed.
func (c *Config) isSet(field string) bool {
	return c.src != nil && c.src.set[field]
}

// parentPath returns the path of the field enclosing path: "a.b[2]" for
// "a.b[2].c", "a.b" for "a.b[2]", "" for "a".
func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

// fieldPath joins a parent path and a key.
func fieldPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// decoder walks a YAML node tree into a value by reflection over the yaml
// struct tags, collecting every problem instead of stopping at the first.
type decoder struct {
	file string
	src  *source
	errs []FieldError
	// active holds the anchored nodes being decoded through an alias, to
	// catch an alias to a node that contains it.
	active map[*yaml.Node]bool
	// nodes counts the nodes visited; see maxNodes.
	nodes int
}

func (d *decoder) errorf(line int, field, format string, args ...any) {
	if len(d.errs) > maxErrors {
		return // asError says that some were left out
	}
	d.errs = append(d.errs, newFieldError(d.file, line, field, fmt.Sprintf(format, args...)))
}

// stopped reports whether decoding should stop: too many nodes visited or
// too many problems found.
func (d *decoder) stopped() bool {
	return d.nodes >= maxNodes || len(d.errs) > maxErrors
}

// record notes where the field at path was written, and whether with a
// value.
func (d *decoder) record(path string, line int, n *yaml.Node) {
	d.src.lines[path] = line
	if !isNull(n) {
		d.src.set[path] = true
	}
}

// isNull reports whether n is an explicit or implicit YAML null ("~",
// "null", or nothing at all), following aliases.
func isNull(n *yaml.Node) bool {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describeNode names what a node is, for "want X, got Y" messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	if len(n.Value) > 80 {
		return strconv.Quote(strings.ToValidUTF8(n.Value[:77], "") + "...")
	}
	return strconv.Quote(n.Value)
}

// want describes the YAML a Go type is written as.
func want(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		switch t {
		case reflect.TypeFor[Duration]():
			return "a duration like 5s"
		case reflect.TypeFor[ByteSize]():
			return "a size like 64KiB"
		}
		return "a string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return want(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// decode stores node n into v, the field at path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.nodes++
	if d.nodes == maxNodes {
		d.errorf(n.Line, path, "the config is too large (more than %d YAML nodes, aliases expanded)", maxNodes)
	}
	if d.stopped() {
		return
	}
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil || d.active[target] {
			d.errorf(n.Line, path, "alias *%s refers to the node that contains it", n.Value)
			return
		}
		d.active[target] = true
		defer delete(d.active, target)
		d.decode(target, v, path)
		return
	}
	if isNull(n) {
		return // not written: leave the zero value for ApplyDefaults
	}
	t := v.Type()
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok && t.Kind() != reflect.Pointer {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n.Line, path, "want %s, got %s", want(t), describeNode(n))
			return
		}
		if err := u.UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n.Line, path, "%s", err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n.Line, path, "want a string, got %s", describeNode(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		switch {
		case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool":
			v.SetBool(strings.EqualFold(n.Value, "true"))
		case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && isBoolWord(n.Value):
			d.errorf(n.Line, path, "want true or false, got %s (YAML 1.2 reads it as a string)", describeNode(n))
		case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && (strings.EqualFold(n.Value, "true") || strings.EqualFold(n.Value, "false")):
			d.errorf(n.Line, path, "want true or false, got the string %s (remove the quotes)", describeNode(n))
		default:
			d.errorf(n.Line, path, "want true or false, got %s", describeNode(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.decodeInt(n, v, path)
	default:
		d.errorf(n.Line, path, "cannot decode into %s", t)
	}
}

// isBoolWord reports whether s is a YAML 1.1 boolean that YAML 1.2 reads
// as a string.
func isBoolWord(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "no", "on", "off", "y", "n":
		return true
	}
	return false
}

// decodeInt stores a YAML integer into an int field.
func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "want a whole number, got %s", describeNode(n))
		return
	}
	switch n.ShortTag() {
	case "!!int":
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v.OverflowInt(i) {
			d.errorf(n.Line, path, "want a whole number, got %s (too large)", describeNode(n))
			return
		}
		v.SetInt(i)
	case "!!float":
		if !strings.ContainsAny(n.Value, ".eE") && isDecimal(n.Value) {
			d.errorf(n.Line, path, "want a whole number, got %s (too large)", describeNode(n))
			return
		}
		d.errorf(n.Line, path, "want a whole number, got %s", describeNode(n))
	case "!!str":
		if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			d.errorf(n.Line, path, "want a whole number, got the string %s (remove the quotes)", describeNode(n))
			return
		}
		d.errorf(n.Line, path, "want a whole number, got %s", describeNode(n))
	default:
		d.errorf(n.Line, path, "want a whole number, got %s", describeNode(n))
	}
}

// decodeSlice stores a YAML sequence into a slice field.
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "want %s, got %s", want(v.Type()), describeNode(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := path + "[" + strconv.Itoa(i) + "]"
		d.record(p, item.Line, item)
		d.decode(item, s.Index(i), p)
	}
	v.Set(s)
}

// pair is one key and value of a YAML mapping.
type pair struct {
	key, value *yaml.Node
}

// pairs returns the keys and values of mapping n, with the merge keys
// ("<<: *anchor") expanded: the keys written in n come first, then the
// merged ones that n does not override. It reports a key written twice.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var own, merged []pair
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(val, path)...)
			continue
		}
		if k.Kind == yaml.ScalarNode {
			if line, dup := first[k.Value]; dup {
				d.errorf(k.Line, fieldPath(path, k.Value), "written twice (first on line %d): remove one", line)
				continue
			}
			first[k.Value] = k.Line
		}
		own = append(own, pair{k, val})
	}
	for _, p := range merged {
		if _, ok := first[p.key.Value]; !ok {
			first[p.key.Value] = p.key.Line
			own = append(own, p)
		}
	}
	return own
}

// mergeSources returns the pairs that a merge key's value brings in: the
// value is a mapping, an alias to one, or a list of those.
func (d *decoder) mergeSources(n *yaml.Node, path string) []pair {
	d.nodes++
	if d.stopped() {
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		target := n.Alias
		if target == nil || d.active[target] {
			d.errorf(n.Line, path, "alias *%s refers to the node that contains it", n.Value)
			return nil
		}
		d.active[target] = true
		defer delete(d.active, target)
		return d.mergeSources(target, path)
	case yaml.MappingNode:
		return d.pairs(n, path)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range n.Content {
			if item.Kind == yaml.SequenceNode {
				d.errorf(item.Line, path, "<< wants a mapping or a list of mappings, got a list in the list")
				continue
			}
			out = append(out, d.mergeSources(item, path)...)
		}
		return out
	}
	d.errorf(n.Line, path, "<< wants a mapping or a list of mappings, got %s", describeNode(n))
	return nil
}

// keyName returns the name of a mapping key, reporting a key that is not
// a plain scalar.
func (d *decoder) keyName(k *yaml.Node, path string) (string, bool) {
	if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
		d.errorf(k.Line, path, "want a key name, got %s", describeNode(k))
		return "", false
	}
	return k.Value, true
}

// decodeMap stores a YAML mapping into a map field keyed by string.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "want %s, got %s", want(v.Type()), describeNode(n))
		return
	}
	t := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	for _, p := range d.pairs(n, path) {
		name, ok := d.keyName(p.key, path)
		if !ok {
			continue
		}
		fp := fieldPath(path, name)
		d.record(fp, p.key.Line, p.value)
		elem := reflect.New(t.Elem()).Elem()
		d.decode(p.value, elem, fp)
		if elem.Kind() == reflect.Pointer && elem.IsNil() {
			// Written with nothing under it: still an entry.
			elem.Set(reflect.New(t.Elem().Elem()))
		}
		v.SetMapIndex(reflect.ValueOf(name).Convert(t.Key()), elem)
	}
}

// yamlFields returns the struct fields of t that YAML sets, by key.
func yamlFields(t reflect.Type) (index map[string]int, names []string) {
	index = map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		index[name] = i
		names = append(names, name)
	}
	return index, names
}

// decodeStruct stores a YAML mapping into a struct, by yaml tags.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "want a mapping, got %s", describeNode(n))
		return
	}
	index, names := yamlFields(v.Type())
	for _, p := range d.pairs(n, path) {
		name, ok := d.keyName(p.key, path)
		if !ok {
			continue
		}
		fp := fieldPath(path, name)
		i, known := index[name]
		if !known {
			if path == "" && strings.HasPrefix(name, "x-") {
				continue // an extension key, holding anchors
			}
			d.unknownKey(p.key, fp, name, names)
			continue
		}
		d.record(fp, p.key.Line, p.value)
		d.decode(p.value, v.Field(i), fp)
	}
}

// unknownKey reports a key that is not a field, suggesting a close one or
// else listing the known keys.
func (d *decoder) unknownKey(k *yaml.Node, field, name string, names []string) {
	if s := suggest(name, names); s != "" {
		d.errorf(k.Line, field, "unknown key; did you mean %q?", s)
		d.src.misspelled[fieldPath(parentPath(field), s)] = true
		return
	}
	d.errorf(k.Line, field, "unknown key (known keys here: %s)", strings.Join(names, ", "))
}
