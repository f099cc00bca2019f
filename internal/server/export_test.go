package server

// ProxySystemClock reports whether the running configuration's proxy
// reads the system's clock (proxy.Handler.SystemClock).
func (s *Server) ProxySystemClock() bool { return s.root.Load().proxy.SystemClock() }
