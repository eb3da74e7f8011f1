/* secret.h — finding and loading the HITL.sh API key (DESIGN.md §2.6).
 * Order: $CREDENTIALS_DIRECTORY/hitl-api-key (systemd LoadCredential=), then
 * api.key_file (refused if group/other may read it, it is not owned by us or
 * root, it is not a regular file, or its directory fails pathtrust: writable by
 * anyone but root and us, unless sticky and root's or ours like /tmp; opened
 * O_NONBLOCK|O_NOFOLLOW, so a FIFO cannot hang us), then $HITL_API_KEY
 * (removed from the environment once read). The key is returned in memory the
 * caller wipes (erase_and_freep); it is never logged.
 * The standby key (hitld(8), "Key rotation") comes from
 * $CREDENTIALS_DIRECTORY/hitl-api-key.next, then api.next_key_file, with the
 * same checks; never from the environment. */
#pragma once

#include <errno.h>
#include <stdbool.h>

#define SECRET_KEY_MAX 256
#define SECRET_CREDENTIAL_NAME "hitl-api-key"
#define SECRET_STANDBY_CREDENTIAL_NAME "hitl-api-key.next"

typedef enum SecretSource {
	SECRET_SOURCE_CREDENTIAL,
	SECRET_SOURCE_KEY_FILE,
	SECRET_SOURCE_ENVIRONMENT,
	_SECRET_SOURCE_MAX,
	_SECRET_SOURCE_INVALID = -EINVAL,
} SecretSource;

const char *secret_source_to_string(SecretSource s);

/* Loads the key. key_file may be NULL. Returns 0 and *ret_key (malloc'd,
 * wipe with erase_and_freep) and *ret_source; -ENOKEY when no source has a
 * key; another negative errno when a source exists but is refused (logged
 * with the source and the reason, never the key). */
int secret_load(const char *key_file, char **ret_key, SecretSource *ret_source);

/* Loads the standby key: as secret_load, without the environment. -ENOKEY
 * when there is none (not an error: a standby is optional). */
int secret_load_standby(const char *next_key_file, char **ret_key, SecretSource *ret_source);

/* Is key plausible: 1..SECRET_KEY_MAX printable ASCII, no spaces? */
bool secret_key_is_valid(const char *key);

/* Makes the process non-dumpable and disables core files, so the key can
 * never end up in a core dump or be read through ptrace by another uid. */
int secret_protect_process(void);
