// Package fastcgi is gatewise's FastCGI client: a Transport that implements
// http.RoundTripper over PHP-FPM's FastCGI protocol (TCP or unix socket), so
// httputil.ReverseProxy uses it like an http.Transport.
//
// The Transport does what nginx's fastcgi_pass with the usual WordPress and
// Laravel configuration does: it maps the request's path onto a document
// root, serves static files from disk itself, runs .php files (and the
// front controller, index.php, for paths that are not files) through
// PHP-FPM with the CGI/1.1 variables PHP expects, streams request and
// response bodies, and keeps connections for reuse.
//
// It also knows why PHP failed. PHP's messages on the FastCGI error stream
// (FCGI_STDERR) and the way a connection ends are classified into the PHP
// causes of the taxonomy (php_fatal_error, php_memory_exhausted,
// php_timeout, fpm_pool_exhausted, fpm_not_running, fpm_worker_crashed):
// RoundTrip returns a *cause.Error whose Err is a *PHPError holding the
// PHP file and line for the owner's log, while the cause's Detail, which
// the visitor may see, never holds them. See RoundTrip for the contract.
//
// Status reads PHP-FPM's status page (pm.status_path) over FastCGI.
package fastcgi
