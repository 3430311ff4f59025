"""Errors of the vault service, each with a stable problem code."""

from __future__ import annotations

from kit.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceUnavailable, SuiteError


class InvalidField(BadRequest):
    code = "invalid_field"
    title = "A field value is not valid"


class RecordNotFound(NotFound):
    code = "record_not_found"
    title = "No such record"


class KeyNotFound(NotFound):
    code = "key_not_found"
    title = "No such key"


class JobNotFound(NotFound):
    code = "rewrap_job_not_found"
    title = "No such rewrap job"


class KeyExists(Conflict):
    code = "key_exists"
    title = "A key with this name exists"


class KeyPurposeMismatch(BadRequest):
    code = "key_purpose_mismatch"
    title = "This key cannot be used for this operation"


class KeyVersionRetired(BadRequest):
    code = "key_version_retired"
    title = "The key version is below the minimum decryption version"


class KeyVersionInUse(Conflict):
    code = "key_version_in_use"
    title = "Data is still wrapped under a version this change would retire"


class KeyVersionTooNew(Conflict):
    code = "key_version_too_new"
    title = "Other replicas may not have adopted this version yet"


class InvalidKeyVersion(BadRequest):
    code = "invalid_key_version"
    title = "Not a valid key version for this key"


class CiphertextIntegrity(BadRequest):
    """A ciphertext given by the caller failed authentication (tampered, or other key/context)."""

    code = "integrity_error"
    title = "Ciphertext integrity check failed"


class StoredIntegrity(Conflict):
    """A stored value failed authentication: edited in the database or moved to another record/field."""

    code = "integrity_error"
    title = "Stored data failed its integrity check"


class MalformedCiphertext(BadRequest):
    code = "malformed_ciphertext"
    title = "Not a vault ciphertext"


class SubjectShredded(SuiteError):
    status = 410
    code = "subject_shredded"
    title = "The subject's data was destroyed"


class NotAllowed(Forbidden):
    code = "vault_access_denied"
    title = "Not allowed to access this data"


class ApprovalRequired(Forbidden):
    code = "approval_required"
    title = "This read needs an approved request"


class RestoreRefused(Conflict):
    code = "restore_refused"
    title = "The restore cannot proceed"


class RootKeyUnavailable(ServiceUnavailable):
    """Stored keys name a root key this process is not configured with (a deployment error)."""

    code = "root_key_unavailable"
    title = "A root key is not configured"


class ContactChangeRefused(Forbidden):
    code = "contact_change_refused"
    title = "Contact fields change only through the owner's contact flow"


class ShredLedgerUnavailable(ServiceUnavailable):
    code = "shred_ledger_unavailable"
    title = "The shred ledger cannot be written"
