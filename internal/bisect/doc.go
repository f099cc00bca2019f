// Package bisect finds the items (plugins, extensions, modules) whose being
// enabled makes a site fail, with as few probes of the site as it can, and
// always puts the site back as it found it.
//
// The package has three layers:
//
//   - Search is the pure algorithm over a Test function: it checks that the
//     site fails with every item enabled and works with every item
//     disabled, bisects for one culprit (about log2(n) probes), falls back to
//     Zeller and Hildebrandt's delta debugging (ddmin) when no single item
//     explains the failure, and repeats on what is left until the site
//     works. It is bounded by a maximum number of probes.
//   - Site changes the state of a real site with shell commands (disable and
//     enable one item, with {} replaced by the item, shell-quoted), writing a
//     journal before any item is disabled, so that Restore can finish the
//     job after a crash.
//   - Run wires the two with an HTTP probe (status and pattern, each state
//     probed a number of times to tell a flaky site from a broken one),
//     prints the progress, and restores the site at the end, on error and on
//     cancellation.
package bisect
