# Independent generator of sealing/testdata/vectors.json (Python "cryptography" package):
#   python3 testdata/genvectors.py > testdata/vectors.json
import hashlib, json, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def h(s): return hashlib.sha256(s).digest()
def det(label, n):  # deterministic bytes
    out=b""; i=0
    while len(out)<n:
        out+=h(label.encode()+bytes([i])); i+=1
    return out[:n]

def seal(key,row,column,pt,nonce):
    kid=h(b"keyserver sealing key id v1"+key)[:4]
    hdr=bytes([1])+kid
    c=column.encode()
    ad=hdr+struct.pack(">H",len(row))+row+struct.pack(">H",len(c))+c
    return kid, hdr+nonce+AESGCM(key).encrypt(nonce,pt,ad)

cases=[
 ("kA", det("key1",32), det("uid1",16), "accounts.ka", det("ka",32)),
 ("wrapKb", det("key1",32), det("uid1",16), "accounts.wrap_kb", det("wrapkb",32)),
 ("verifier", det("key1",32), det("uid2",16), "accounts.srp_verifier", det("verifier",256)),
 ("email code", det("key2",32), det("uid2",16), "accounts.email_code", det("emailcode",16)),
 ("forgot code", det("key2",32), det("uid3",16)+det("tok",32), "tokens.code", b"48213907"),
 ("empty plaintext", det("key2",32), b"\x00", "c", b""),
 ("all zero", bytes(32), bytes(16), "tokens.auth_key", bytes(32)),
]
out=[]
for name,key,row,col,pt in cases:
    nonce=det("nonce"+name,12)
    kid,s=seal(key,row,col,pt,nonce)
    out.append(dict(name=name,key=key.hex(),key_id=kid.hex(),row=row.hex(),column=col,
        plaintext=pt.hex(),nonce=nonce.hex(),sealed=s.hex()))
print(json.dumps(dict(comment="AES-256-GCM sealing vectors (format v1), computed independently with Python cryptography by testdata/genvectors.py; see package doc", vectors=out),indent=1))
