package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certFiles are the self-signed certificate every TLS listener serves.
type certFiles struct {
	Cert     string // PEM certificate
	Key      string // PEM private key (PKCS #8)
	Combined string // certificate then key, in one file, as HAProxy wants it
}

// writeSelfSigned generates an ECDSA P-256 key and a self-signed
// certificate for 127.0.0.1 and localhost, valid for a day, and writes
// them into dir.
func writeSelfSigned(dir string) (certFiles, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certFiles{}, fmt.Errorf("certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return certFiles{}, fmt.Errorf("certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return certFiles{}, fmt.Errorf("certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return certFiles{}, fmt.Errorf("certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	f := certFiles{
		Cert:     filepath.Join(dir, "cert.pem"),
		Key:      filepath.Join(dir, "key.pem"),
		Combined: filepath.Join(dir, "combined.pem"),
	}
	for _, w := range []struct {
		path string
		data []byte
	}{{f.Cert, certPEM}, {f.Key, keyPEM}, {f.Combined, append(append([]byte{}, certPEM...), keyPEM...)}} {
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			return certFiles{}, fmt.Errorf("certificate: %w", err)
		}
	}
	return f, nil
}
