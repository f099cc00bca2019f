package cause

//go:generate go run ./gendocs
