package compat

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"sort"
)

// RocketMQ 4.x ACL ext fields (reference §1.14).
const (
	ExtAccessKey     = "AccessKey"
	ExtSignature     = "Signature"
	ExtSecurityToken = "SecurityToken"
)

// SignatureContent is what a RocketMQ 4.x client signs: the values of
// every ext field except Signature (AccessKey included), ordered by key,
// concatenated, then the body. With skipToken the SecurityToken value is
// left out, as rocketmq-client-go v2 does (the Java client includes it).
func SignatureContent(ext map[string]string, body []byte, skipToken bool) []byte {
	keys := make([]string, 0, len(ext))
	n := len(body)
	for k, v := range ext {
		if k == ExtSignature || (skipToken && k == ExtSecurityToken) {
			continue
		}
		keys = append(keys, k)
		n += len(v)
	}
	sort.Strings(keys)
	buf := make([]byte, 0, n)
	for _, k := range keys {
		buf = append(buf, ext[k]...)
	}
	return append(buf, body...)
}

// Signature is Base64(HmacSHA1(secret, content)).
func Signature(content, secret []byte) string {
	m := hmac.New(sha1.New, secret)
	m.Write(content)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether sig signs ext and body under secret,
// with or without the SecurityToken (the Java and Go clients differ).
func VerifySignature(ext map[string]string, body, secret []byte, sig string) bool {
	if hmac.Equal([]byte(Signature(SignatureContent(ext, body, false), secret)), []byte(sig)) {
		return true
	}
	if _, ok := ext[ExtSecurityToken]; ok {
		return hmac.Equal([]byte(Signature(SignatureContent(ext, body, true), secret)), []byte(sig))
	}
	return false
}

// Sign adds AccessKey and Signature to req as a RocketMQ 4.x client
// does. Call it last, after every other ext field is set.
func Sign(req *Command, accessKey, secretKey string) {
	delete(req.Ext, ExtSignature)
	req.SetExt(ExtAccessKey, accessKey)
	req.SetExt(ExtSignature, Signature(SignatureContent(req.Ext, req.Body, false), []byte(secretKey)))
}
