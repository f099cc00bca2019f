package server

import (
	"encoding/json"
	"net/http"
)

// causeJSON is one cause in the admin API's /api/causes.
type causeJSON struct {
	ID               string `json:"id"`
	Title            string `json:"title"`
	Status           int    `json:"status"`
	ProxyStatusError string `json:"proxy_status_error"`
	Hop              string `json:"hop"`
	Visitor          string `json:"visitor"`
	Owner            string `json:"owner"`
	Retryable        bool   `json:"retryable"`
	Doc              string `json:"doc"`
}

func (s *Server) serveCauses(w http.ResponseWriter, _ *http.Request) {
	all := s.causes.All()
	out := make([]causeJSON, 0, len(all))
	for _, c := range all {
		out = append(out, causeJSON{ID: string(c.ID), Title: c.Title, Status: c.Status, ProxyStatusError: c.ProxyStatusError,
			Hop: string(c.Hop), Visitor: c.Visitor, Owner: c.Owner, Retryable: c.Retryable, Doc: c.DocPath()})
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

// serveUpstreams answers /api/upstreams: every pool's targets with their
// health, ejection, load, latency and learned idle timeout.
func (s *Server) serveUpstreams(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.root.Load().proxy.Upstreams())
}
