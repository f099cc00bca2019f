package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem found in a config: where it is and what is
// wrong. It is what Parse and Validate report, gathered in an *Errors.
type FieldError struct {
	// File is the config file's path; empty for a config built from flags.
	File string
	// Line is the 1-based line of the field in File; 0 when unknown (the
	// field is missing, or the config was not read from a file).
	Line int
	// Field is the field's path, such as "pools.app.targets[1].url" or
	// "routes[0].pool"; empty for a problem with the whole file.
	Field string
	// Problem says what is wrong, and when it can, how to fix it.
	Problem string
}

// Error formats the problem as "FILE:LINE: field: problem", leaving out
// the parts that are unknown: "FILE: field: problem" when Line is 0,
// "field: problem" when File is empty too.
func (e FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Errors is every problem found in a config, sorted by line. Parse,
// Validate and LoadValid return a non-nil *Errors (never an empty one)
// when they find problems; use errors.As to get at the list.
type Errors struct {
	// List holds the problems in the order of their lines in the file;
	// problems with no line (Line 0) come first.
	List []FieldError
}

// Error returns one FieldError.Error() per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, fe := range e.List {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as errors, so errors.As can find a
// FieldError.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, fe := range e.List {
		errs[i] = fe
	}
	return errs
}

// sortErrors sorts problems by file then line, keeping the order in which
// they were found within a line.
func sortErrors(list []FieldError) {
	slices.SortStableFunc(list, func(a, b FieldError) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
}

// maxErrors bounds the problems reported for one config: past it, a file
// is not a config with mistakes, and listing more only costs memory.
const maxErrors = 1000

// maxProblemLen bounds the length of one problem's text, which may quote
// a value from the file.
const maxProblemLen = 300

// newFieldError returns a FieldError, its problem cut to maxProblemLen.
func newFieldError(file string, line int, field, problem string) FieldError {
	if len(problem) > maxProblemLen {
		problem = strings.ToValidUTF8(problem[:maxProblemLen-3], "") + "..."
	}
	if len(field) > maxProblemLen {
		field = strings.ToValidUTF8(field[:maxProblemLen-3], "") + "..."
	}
	return FieldError{File: file, Line: line, Field: field, Problem: problem}
}

// asError returns nil for no problems, or the sorted problems as *Errors,
// at most maxErrors of them and then a note saying some were left out.
func asError(list []FieldError) error {
	if len(list) == 0 {
		return nil
	}
	sortErrors(list)
	if len(list) > maxErrors {
		file := list[0].File
		list = append(list[:maxErrors:maxErrors], FieldError{File: file,
			Problem: fmt.Sprintf("too many problems: only the first %d are shown", maxErrors)})
	}
	return &Errors{List: list}
}
