package secretdata

import (
	"fmt"
	"sort"
	"strings"
	"text/template/parse"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// Limits of a secretTemplate. They keep a template from one namespace from
// pinning a worker or filling memory.
const (
	MaxTemplateKeys       = 32
	MaxTemplateValueBytes = 16 << 10
	MaxTemplateTotalBytes = 64 << 10
	MaxMetadataEntries    = 32       // labels, and annotations, each
	MaxAnnotationBytes    = 64 << 10 // keys and values of all annotations
	// MaxRenderedBytes bounds what the templates of one Secret write; the
	// default keys are not counted.
	MaxRenderedBytes = 64 << 10
	// MaxTemplateScopes is the most scopes a template that uses .Scopes renders.
	MaxTemplateScopes = 512
	// maxSteps bounds template nodes evaluated per Secret: nodes outside a
	// range count once, nodes in the range body once per scope.
	maxSteps = 1 << 18
	// maxFuncWork bounds the bytes that template functions read and write.
	maxFuncWork = 1 << 20
)

// Fields of a secretTemplate named by TemplateError.
const (
	FieldData        = "data"
	FieldLabels      = "labels"
	FieldAnnotations = "annotations"
	FieldType        = "type"
)

// Fixed reasons of render-time failures: they depend on the token, so they
// carry no number or text taken from it.
const (
	reasonTooLarge   = "renders more than 64 KiB"
	reasonTooMuch    = "its functions handle more than 1 MiB"
	reasonNoRender   = "does not render"
	reasonTooManyScp = "the token has more than 512 scopes, too many to render"
	reasonDockerJSON = "does not render a JSON object, which a kubernetes.io/dockerconfigjson Secret needs"
)

// ValidateTemplate checks a secretTemplate without any token: its type,
// labels, annotations, and that every data template parses and uses only the
// allowed subset of text/template. A template it accepts renders in time
// linear in its size and the number of scopes; rendering fails only at a
// limit (output, function work, scopes) or, for a dockerconfigjson Secret,
// when the result is no JSON object. Errors are *TemplateError.
func ValidateTemplate(t *v1.SecretTemplate) error {
	_, err := compile(t)
	return err
}

// compiled is a validated secretTemplate.
type compiled struct {
	keys  []string
	trees map[string]*parse.Tree
	// scopeKey is the first key whose template reads .Scopes, if any.
	scopeKey string
	// fixed and perScope are node counts outside and inside range bodies.
	fixed, perScope int
}

func compile(t *v1.SecretTemplate) (*compiled, error) {
	c := &compiled{trees: map[string]*parse.Tree{}}
	if t == nil {
		return c, nil
	}
	if err := checkType(t.Type, t.Data); err != nil {
		return nil, err
	}
	if err := checkMetadata(FieldLabels, t.Labels); err != nil {
		return nil, err
	}
	if err := checkMetadata(FieldAnnotations, t.Annotations); err != nil {
		return nil, err
	}
	c.keys = sortedKeys(t.Data)
	if len(c.keys) > MaxTemplateKeys {
		return nil, dataError(c.keys[MaxTemplateKeys], fmt.Sprintf("more than %d data keys", MaxTemplateKeys))
	}
	total := 0
	for _, key := range c.keys {
		text := t.Data[key]
		if !validDataKey(key) {
			return nil, dataError(key, "not a valid Secret data key (letters, digits, '-', '_' and '.')")
		}
		if len(text) > MaxTemplateValueBytes {
			return nil, dataError(key, "the template is longer than 16 KiB")
		}
		if total += len(text); total > MaxTemplateTotalBytes {
			return nil, dataError(key, "the templates together are longer than 64 KiB")
		}
		tree, err := parseTemplate(key, text)
		if err != nil {
			return nil, err
		}
		ck := checker{tree: tree}
		if err := ck.list(tree.Root, scope{dot: tRoot}); err != nil {
			return nil, dataError(key, err.Error())
		}
		if ck.scopes && c.scopeKey == "" {
			c.scopeKey = key
		}
		c.fixed += ck.fixed
		c.perScope += ck.perScope
		c.trees[key] = tree
	}
	return c, nil
}

func dataError(key, reason string) *TemplateError {
	return &TemplateError{Field: FieldData, Key: key, Reason: reason}
}

// parseTemplate parses one data template on its own: no function check (the
// allow-list walk names refused functions better), no other templates.
func parseTemplate(key, text string) (tree *parse.Tree, err error) {
	defer func() {
		if recover() != nil {
			tree, err = nil, dataError(key, "does not parse")
		}
	}()
	tree = parse.New(key)
	tree.Mode = parse.SkipFuncCheck
	set := map[string]*parse.Tree{}
	if _, err := tree.Parse(text, "", "", set); err != nil {
		return nil, dataError(key, "does not parse: "+templateReason(err))
	}
	if len(set) != 1 || set[key] != tree {
		return nil, dataError(key, "define and block are not allowed")
	}
	return tree, nil
}

// checkType allows Opaque, the two kubernetes.io types whose content the
// operator can render, and custom types outside the Kubernetes domains.
func checkType(typ corev1.SecretType, data map[string]string) error {
	fail := func(reason string) error {
		return &TemplateError{Field: FieldType, Key: string(typ), Reason: reason}
	}
	s := string(typ)
	switch typ {
	case "", corev1.SecretTypeOpaque:
		return nil
	case corev1.SecretTypeBasicAuth:
		_, user := data[corev1.BasicAuthUsernameKey]
		_, pass := data[corev1.BasicAuthPasswordKey]
		if !user && !pass {
			return fail("a kubernetes.io/basic-auth Secret needs a username or password key in data")
		}
		return nil
	case corev1.SecretTypeDockerConfigJson:
		if _, ok := data[corev1.DockerConfigJsonKey]; !ok {
			return fail("a kubernetes.io/dockerconfigjson Secret needs a .dockerconfigjson key in data")
		}
		return nil
	case corev1.SecretTypeServiceAccountToken:
		return fail("not allowed: the cluster would write a service account token into the Secret")
	}
	if len(s) > 253 || strings.Trim(s, "-_./0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return fail("not a valid Secret type (at most 253 letters, digits, '-', '_', '.' and '/')")
	}
	if domain, _, ok := strings.Cut(s, "/"); ok && kubernetesDomain(domain) {
		return fail("not allowed: of the Kubernetes Secret types only Opaque, kubernetes.io/basic-auth and kubernetes.io/dockerconfigjson can hold a token")
	}
	return nil
}

func kubernetesDomain(d string) bool {
	d = strings.ToLower(d)
	for _, k := range []string{"kubernetes.io", "k8s.io"} {
		if d == k || strings.HasSuffix(d, "."+k) {
			return true
		}
	}
	return false
}

// checkMetadata validates labels or annotations as the API server would, and
// keeps the operator's own keys out of users' hands.
func checkMetadata(field string, m map[string]string) error {
	keys := sortedKeys(m)
	if len(keys) > MaxMetadataEntries {
		return &TemplateError{Field: field, Key: keys[MaxMetadataEntries], Reason: fmt.Sprintf("more than %d %s", MaxMetadataEntries, field)}
	}
	size := 0
	for _, k := range keys {
		fail := func(reason string) error { return &TemplateError{Field: field, Key: k, Reason: reason} }
		if operatorDomain(k) {
			return fail("the key is reserved for the operator")
		}
		if field == FieldLabels && k == v1.LabelManagedBy {
			return fail("the label is reserved for the operator")
		}
		name := k
		if field == FieldAnnotations {
			name = strings.ToLower(k) // as the API server checks annotation keys
		}
		if errs := content.IsLabelKey(name); len(errs) > 0 {
			return fail("not a valid key: " + strings.Join(errs, "; "))
		}
		if field == FieldLabels {
			if errs := content.IsLabelValue(m[k]); len(errs) > 0 {
				return fail("not a valid label value: " + strings.Join(errs, "; "))
			}
		}
		if size += len(k) + len(m[k]); field == FieldAnnotations && size > MaxAnnotationBytes {
			return fail("the annotations together are larger than 64 KiB")
		}
	}
	return nil
}

// operatorDomain: keys under token-operator.io or its subdomains, such as
// tokens.token-operator.io/, are the operator's bookkeeping.
func operatorDomain(key string) bool {
	domain, _, ok := strings.Cut(strings.ToLower(key), "/")
	return ok && (domain == "token-operator.io" || strings.HasSuffix(domain, ".token-operator.io"))
}

// vtype is the static type of a template value. The walk rejects every use
// that could fail at execution time, so rendering cannot turn a property of
// the token into an error.
type vtype int

const (
	tAny     vtype = iota // known only at run time: only for parameters of type any
	tRoot                 // the template's values
	tString               // .AccessToken and the like, and function results
	tStrings              // .Scopes
	tInt                  // constants, unixEpoch, a range index: Go types differ, so no typed parameter takes it
	tBool                 // true, false, not
)

var typeNames = map[vtype]string{tAny: "a value of varying type", tRoot: "the top-level values", tString: "a string", tStrings: "a list of strings", tInt: "a number", tBool: "a boolean"}

// fields are the values templates see, with their types.
var fields = map[string]vtype{"AccessToken": tString, "TokenType": tString, "ExpiresAt": tString, "Scopes": tStrings, "ClientID": tString,
	"AccessKeyID": tString, "SecretAccessKey": tString, "SessionToken": tString}

// signature of an allowed function; a variadic one takes any number of
// further arguments of any type.
type signature struct {
	params   []vtype
	variadic bool
	result   vtype // tAny for and/or: the common type of their arguments
}

// allowed are the only functions templates may call. None can fail or
// compare values: a template cannot branch on anything but whether a value
// is empty, so it has no way to turn a byte of the token into an error.
var allowed = map[string]signature{
	"b64enc":    {params: []vtype{tString}, result: tString},
	"toJson":    {params: []vtype{tAny}, result: tString},
	"quote":     {params: []vtype{tString}, result: tString},
	"rfc3339":   {params: []vtype{tString}, result: tString},
	"unixEpoch": {params: []vtype{tString}, result: tInt},
	"join":      {params: []vtype{tString, tStrings}, result: tString},
	"upper":     {params: []vtype{tString}, result: tString},
	"lower":     {params: []vtype{tString}, result: tString},
	"trim":      {params: []vtype{tString}, result: tString},
	"print":     {variadic: true, result: tString},
	"println":   {variadic: true, result: tString},
	"not":       {params: []vtype{tAny}, result: tBool},
	"and":       {params: []vtype{tAny}, variadic: true, result: tAny},
	"or":        {params: []vtype{tAny}, variadic: true, result: tAny},
}

func allowedNames() string {
	names := make([]string, 0, len(allowed))
	for n := range allowed {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// scope is what the walk knows at a node.
type scope struct {
	dot     vtype
	vars    map[string]vtype // variables declared by the enclosing range
	inRange bool
}

// checker walks one template's parse tree against the allow-list.
type checker struct {
	tree            *parse.Tree
	scopes          bool // the template reads .Scopes
	fixed, perScope int
}

func (c *checker) fail(n parse.Node, format string, args ...any) error {
	loc, _ := c.tree.ErrorContext(n)
	return fmt.Errorf("%s: %s", loc, fmt.Sprintf(format, args...))
}

// step counts a node towards the rendering bound.
func (c *checker) step(s scope) {
	if s.inRange {
		c.perScope++
	} else {
		c.fixed++
	}
}

func (c *checker) list(l *parse.ListNode, s scope) error {
	if l == nil {
		return nil
	}
	for _, n := range l.Nodes {
		if err := c.node(n, s); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) node(n parse.Node, s scope) error {
	c.step(s)
	switch n := n.(type) {
	case *parse.TextNode, *parse.CommentNode:
		return nil
	case *parse.BreakNode, *parse.ContinueNode:
		if !s.inRange {
			return c.fail(n, "break and continue only inside range")
		}
		return nil
	case *parse.ActionNode:
		_, err := c.pipe(n.Pipe, s)
		return err
	case *parse.IfNode:
		if _, err := c.pipe(n.Pipe, s); err != nil {
			return err
		}
		if err := c.list(n.List, s); err != nil {
			return err
		}
		return c.list(n.ElseList, s)
	case *parse.WithNode:
		t, err := c.pipe(n.Pipe, s)
		if err != nil {
			return err
		}
		inner := s
		inner.dot = t
		if err := c.list(n.List, inner); err != nil {
			return err
		}
		return c.list(n.ElseList, s)
	case *parse.RangeNode:
		return c.rangeNode(n, s)
	case *parse.TemplateNode:
		return c.fail(n, "template and block are not allowed")
	default:
		return c.fail(n, "%s is not allowed", n)
	}
}

// rangeNode allows only range over .Scopes, not nested, with at most an
// index and an element variable; so every loop ends after len(.Scopes) turns.
func (c *checker) rangeNode(n *parse.RangeNode, s scope) error {
	if s.inRange {
		return c.fail(n, "range inside range is not allowed")
	}
	p := n.Pipe
	if p.IsAssign || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 || !c.isScopes(p.Cmds[0].Args[0], s) {
		return c.fail(n, "range is allowed only over .Scopes or $.Scopes")
	}
	c.scopes = true
	body := scope{dot: tString, vars: map[string]vtype{}, inRange: true}
	for k, t := range s.vars {
		body.vars[k] = t
	}
	for _, d := range p.Decl {
		if d.Ident[0] == "$" {
			return c.fail(n, "$ cannot be redeclared")
		}
	}
	switch len(p.Decl) {
	case 1:
		body.vars[p.Decl[0].Ident[0]] = tString
	case 2:
		body.vars[p.Decl[0].Ident[0]] = tInt
		body.vars[p.Decl[1].Ident[0]] = tString
	}
	if err := c.list(n.List, body); err != nil {
		return err
	}
	// The range variables are unset when the else branch runs.
	return c.list(n.ElseList, s)
}

func (c *checker) isScopes(n parse.Node, s scope) bool {
	switch n := n.(type) {
	case *parse.FieldNode:
		return s.dot == tRoot && len(n.Ident) == 1 && n.Ident[0] == "Scopes"
	case *parse.VariableNode:
		return len(n.Ident) == 2 && n.Ident[0] == "$" && n.Ident[1] == "Scopes"
	}
	return false
}

func (c *checker) pipe(p *parse.PipeNode, s scope) (vtype, error) {
	c.step(s)
	if len(p.Decl) > 0 || p.IsAssign {
		return 0, c.fail(p, "variables may only be declared by range over .Scopes")
	}
	var t vtype
	for i, cmd := range p.Cmds {
		var piped *vtype
		if i > 0 {
			prev := t
			piped = &prev
		}
		var err error
		if t, err = c.command(cmd, s, piped); err != nil {
			return 0, err
		}
	}
	return t, nil
}

// command types one pipeline stage; piped is the previous stage's result,
// passed as the last argument.
func (c *checker) command(cmd *parse.CommandNode, s scope, piped *vtype) (vtype, error) {
	c.step(s)
	if len(cmd.Args) == 0 {
		return 0, c.fail(cmd, "empty command")
	}
	if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok {
		return c.call(id, cmd.Args[1:], piped, s)
	}
	if len(cmd.Args) > 1 || piped != nil {
		return 0, c.fail(cmd, "only a function takes arguments")
	}
	return c.operand(cmd.Args[0], s)
}

func (c *checker) call(id *parse.IdentifierNode, args []parse.Node, piped *vtype, s scope) (vtype, error) {
	sig, ok := allowed[id.Ident]
	if !ok {
		return 0, c.fail(id, "function %q is not allowed; allowed are %s", id.Ident, allowedNames())
	}
	types := make([]vtype, 0, len(args)+1)
	for _, a := range args {
		t, err := c.operand(a, s)
		if err != nil {
			return 0, err
		}
		types = append(types, t)
	}
	if piped != nil {
		types = append(types, *piped)
	}
	if len(types) < len(sig.params) || (!sig.variadic && len(types) > len(sig.params)) {
		return 0, c.fail(id, "%s takes %d arguments, not %d", id.Ident, len(sig.params), len(types))
	}
	for i, t := range types {
		want := tAny
		if i < len(sig.params) {
			want = sig.params[i]
		}
		if want != tAny && t != want {
			return 0, c.fail(id, "argument %d of %s must be %s, not %s", i+1, id.Ident, typeNames[want], typeNames[t])
		}
	}
	if sig.result != tAny {
		return sig.result, nil
	}
	for _, t := range types[1:] { // and, or: one of their arguments
		if t != types[0] {
			return tAny, nil
		}
	}
	return types[0], nil
}

func (c *checker) operand(n parse.Node, s scope) (vtype, error) {
	c.step(s)
	switch n := n.(type) {
	case *parse.DotNode:
		return s.dot, nil
	case *parse.FieldNode:
		if s.dot != tRoot {
			return 0, c.fail(n, "%s: fields exist only on the top-level values; use $%s", n, n)
		}
		return c.field(n, n.Ident)
	case *parse.VariableNode:
		if n.Ident[0] == "$" {
			if len(n.Ident) == 1 {
				return tRoot, nil
			}
			return c.field(n, n.Ident[1:])
		}
		t, ok := s.vars[n.Ident[0]]
		if !ok {
			return 0, c.fail(n, "variable %s is not set here", n.Ident[0])
		}
		if len(n.Ident) > 1 {
			return 0, c.fail(n, "%s has no fields", n.Ident[0])
		}
		return t, nil
	case *parse.IdentifierNode:
		return c.call(n, nil, nil, s) // a function called without arguments
	case *parse.PipeNode:
		return c.pipe(n, s)
	case *parse.StringNode:
		return tString, nil
	case *parse.BoolNode:
		return tBool, nil
	case *parse.NumberNode:
		if !n.IsInt || n.IsComplex || n.Int64 > 1e9 || n.Int64 < -1e9 {
			return 0, c.fail(n, "only whole numbers up to 1000000000 are allowed")
		}
		return tInt, nil
	case *parse.NilNode:
		return 0, c.fail(n, "nil is not allowed")
	case *parse.ChainNode:
		return 0, c.fail(n, "fields of an expression are not allowed")
	default:
		return 0, c.fail(n, "%s is not allowed", n)
	}
}

func (c *checker) field(n parse.Node, ident []string) (vtype, error) {
	t, ok := fields[ident[0]]
	if !ok {
		return 0, c.fail(n, "unknown field .%s; templates see .AccessToken, .TokenType, .ExpiresAt, .Scopes and .ClientID, and for AWS credentials .AccessKeyID, .SecretAccessKey and .SessionToken", ident[0])
	}
	if len(ident) > 1 {
		return 0, c.fail(n, ".%s has no fields", ident[0])
	}
	if t == tStrings {
		c.scopes = true
	}
	return t, nil
}
