"""ossl — the few OpenSSL calls the payment-provider simulator needs, through
ctypes on the system libcrypto (Python's standard library has no RSA):
SHA256withRSA (PKCS#1 v1.5) sign and verify with PEM keys, and AES-256-GCM
encryption (ciphertext || 16-byte tag, as WeChat Pay API v3 sends it)."""
import ctypes
import ctypes.util

_lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
_p = ctypes.c_void_p
for name, res, args in [
    ("BIO_new_mem_buf", _p, [ctypes.c_char_p, ctypes.c_int]),
    ("BIO_free", ctypes.c_int, [_p]),
    ("PEM_read_bio_PrivateKey", _p, [_p, _p, _p, _p]),
    ("PEM_read_bio_PUBKEY", _p, [_p, _p, _p, _p]),
    ("PEM_read_bio_X509", _p, [_p, _p, _p, _p]),
    ("X509_get_pubkey", _p, [_p]),
    ("X509_free", None, [_p]),
    ("EVP_PKEY_free", None, [_p]),
    ("EVP_sha256", _p, []),
    ("EVP_MD_CTX_new", _p, []),
    ("EVP_MD_CTX_free", None, [_p]),
    ("EVP_DigestSignInit", ctypes.c_int, [_p, _p, _p, _p, _p]),
    ("EVP_DigestSign", ctypes.c_int, [_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t),
                                      ctypes.c_char_p, ctypes.c_size_t]),
    ("EVP_DigestVerifyInit", ctypes.c_int, [_p, _p, _p, _p, _p]),
    ("EVP_DigestVerify", ctypes.c_int, [_p, ctypes.c_char_p, ctypes.c_size_t,
                                        ctypes.c_char_p, ctypes.c_size_t]),
    ("EVP_aes_256_gcm", _p, []),
    ("EVP_CIPHER_CTX_new", _p, []),
    ("EVP_CIPHER_CTX_free", None, [_p]),
    ("EVP_EncryptInit_ex", ctypes.c_int, [_p, _p, _p, ctypes.c_char_p, ctypes.c_char_p]),
    ("EVP_EncryptUpdate", ctypes.c_int, [_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                         ctypes.c_char_p, ctypes.c_int]),
    ("EVP_EncryptFinal_ex", ctypes.c_int, [_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]),
    ("EVP_CIPHER_CTX_ctrl", ctypes.c_int, [_p, ctypes.c_int, ctypes.c_int, _p]),
    ("ERR_clear_error", None, []),
]:
    fn = getattr(_lib, name)
    fn.restype = res
    fn.argtypes = args

EVP_CTRL_GCM_SET_IVLEN = 0x9
EVP_CTRL_GCM_GET_TAG = 0x10


class Key:
    """A private key, a public key, or a certificate's public key, from PEM."""

    def __init__(self, pem):
        data = pem.encode() if isinstance(pem, str) else pem
        self.pkey = None
        for reader in ("PEM_read_bio_PrivateKey", "PEM_read_bio_PUBKEY", "cert"):
            bio = _lib.BIO_new_mem_buf(data, len(data))
            if reader == "cert":
                x = _lib.PEM_read_bio_X509(bio, None, None, None)
                if x:
                    self.pkey = _lib.X509_get_pubkey(x)
                    _lib.X509_free(x)
            else:
                self.pkey = getattr(_lib, reader)(bio, None, None, None)
            _lib.BIO_free(bio)
            if self.pkey:
                break
        _lib.ERR_clear_error()
        if not self.pkey:
            raise ValueError("no key in PEM")

    @classmethod
    def load(cls, path):
        with open(path, "rb") as f:
            return cls(f.read())

    def __del__(self):
        if getattr(self, "pkey", None):
            _lib.EVP_PKEY_free(self.pkey)

    def sign(self, data):
        """SHA256withRSA (PKCS#1 v1.5) signature of data (bytes)."""
        ctx = _lib.EVP_MD_CTX_new()
        try:
            if _lib.EVP_DigestSignInit(ctx, None, _lib.EVP_sha256(), None, self.pkey) != 1:
                raise ValueError("not a private key")
            n = ctypes.c_size_t(0)
            _lib.EVP_DigestSign(ctx, None, ctypes.byref(n), data, len(data))
            buf = ctypes.create_string_buffer(n.value)
            if _lib.EVP_DigestSign(ctx, buf, ctypes.byref(n), data, len(data)) != 1:
                raise ValueError("signing failed")
            return buf.raw[:n.value]
        finally:
            _lib.EVP_MD_CTX_free(ctx)

    def verify(self, data, sig):
        ctx = _lib.EVP_MD_CTX_new()
        try:
            if _lib.EVP_DigestVerifyInit(ctx, None, _lib.EVP_sha256(), None, self.pkey) != 1:
                return False
            ok = _lib.EVP_DigestVerify(ctx, sig, len(sig), data, len(data)) == 1
            _lib.ERR_clear_error()
            return ok
        finally:
            _lib.EVP_MD_CTX_free(ctx)


def aes256gcm_encrypt(key, iv, aad, plain):
    """AES-256-GCM: returns ciphertext || tag (16 bytes)."""
    assert len(key) == 32
    ctx = _lib.EVP_CIPHER_CTX_new()
    try:
        outl = ctypes.c_int(0)
        ok = (_lib.EVP_EncryptInit_ex(ctx, _lib.EVP_aes_256_gcm(), None, None, None) == 1 and
              _lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, len(iv), None) == 1 and
              _lib.EVP_EncryptInit_ex(ctx, None, None, key, iv) == 1)
        if ok and aad:
            ok = _lib.EVP_EncryptUpdate(ctx, None, ctypes.byref(outl), aad, len(aad)) == 1
        out = ctypes.create_string_buffer(len(plain) + 16)
        ok = ok and _lib.EVP_EncryptUpdate(ctx, out, ctypes.byref(outl), plain, len(plain)) == 1
        fin, rest = ctypes.c_int(0), ctypes.create_string_buffer(32)
        ok = ok and _lib.EVP_EncryptFinal_ex(ctx, rest, ctypes.byref(fin)) == 1
        tag = ctypes.create_string_buffer(16)
        ok = ok and _lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16,
                                             ctypes.cast(tag, ctypes.c_void_p)) == 1
        if not ok:
            raise ValueError("AES-256-GCM failed")
        return out.raw[:len(plain)] + tag.raw
    finally:
        _lib.EVP_CIPHER_CTX_free(ctx)
