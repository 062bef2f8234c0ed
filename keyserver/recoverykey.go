package keyserver

import (
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
)

// The recovery-key endpoints (docs/recovery-key.md, RK.4).

// POST /v1/recoveryKey (Hawk sessionToken): stores the account's recovery
// key, replacing the one it had.
func (s *Server) recoveryKeyCreate(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	id, err := o.Hex("recoveryKeyId", keywrap.RecoveryKeyIDSize)
	if err != nil {
		return nil, err
	}
	data, err := o.Hex("recoveryData", keywrap.RecoveryDataSize)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	return emptyObject, s.accounts.CreateRecoveryKey(req.r.Context(), req.caller, id, data)
}

// GET /v1/recoveryKey (Hawk sessionToken): whether the account has one,
// and since when; never the id or the data.
func (s *Server) recoveryKeyStatus(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	k, err := s.accounts.RecoveryKey(req.r.Context(), req.caller)
	if err != nil || k == nil {
		return protocol.RecoveryKeyStatus{}, err
	}
	return protocol.RecoveryKeyStatus{Exists: true, CreatedAt: k.CreatedAt.UnixMilli()}, nil
}

// POST /v1/recoveryKey/destroy (Hawk sessionToken): deletes it; {} also
// when there was none.
func (s *Server) recoveryKeyDestroy(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	return emptyObject, s.accounts.DestroyRecoveryKey(req.r.Context(), req.caller)
}

// POST /v1/recoveryKey/data (Hawk accountResetToken, kept): the
// recoveryData for the holder who proves recoveryKeyId.
func (s *Server) recoveryKeyData(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	id, err := o.Hex("recoveryKeyId", keywrap.RecoveryKeyIDSize)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	k, err := s.accounts.RecoveryData(req.r.Context(), req.caller, id)
	if err != nil {
		return nil, err
	}
	return protocol.RecoveryKeyData{UID: hexString(k.UID), RecoveryData: hexString(k.Data)}, nil
}
