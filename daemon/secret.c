/* secret.c — see secret.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "pathtrust.h"
#include "secret.h"

const char *secret_source_to_string(SecretSource s) {
	static const char *const table[_SECRET_SOURCE_MAX] = {
		[SECRET_SOURCE_CREDENTIAL] = "credential",
		[SECRET_SOURCE_KEY_FILE] = "key file",
		[SECRET_SOURCE_ENVIRONMENT] = "environment",
	};

	return s >= 0 && s < _SECRET_SOURCE_MAX ? table[s] : NULL;
}

bool secret_key_is_valid(const char *key) {
	size_t n;

	if (!key)
		return false;
	n = strlen(key);
	if (n == 0 || n > SECRET_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (key[i] <= ' ' || key[i] > '~')
			return false;
	return true;
}

/* Opens the key file without ever blocking: O_NONBLOCK, so a FIFO (or a device) at the path
 * cannot hang the start or a reload while the stop signals are blocked; O_NOFOLLOW, so
 * whoever may change a link does not choose our key. With check_dir, the directory that holds
 * it must pass pathtrust: whoever may write it may swap the file for one of their choosing
 * (our uid and mode checks would then see their file, not ours). */
static int open_key_file(const char *path, bool check_dir) {
	_cleanup_(closep) int dir = -EBADF;
	const char *slash = strrchr(path, '/');
	int fd;

	if (check_dir) {
		dir = pathtrust_open_parent(path, O_PATH, PATH_TRUST_CONTAINER, "API key directory");
		if (dir < 0)
			return dir;
		fd = openat(dir, slash ? slash + 1 : path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	} else
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			return log_error_errno(-ELOOP, "API key file %s is a symbolic link, refusing it; "
			                       "point the configuration at the file itself.", path);
		return -errno;
	}
	return fd;
}

/* Reads a small secret file; strips one trailing newline (and CR, blanks). Type, owner and
 * mode are checked on the descriptor, so they are those of the file read. */
static int read_key_file(const char *path, bool check_mode, char **ret_key) {
	_cleanup_(closep) int fd = -EBADF;
	char buf[SECRET_KEY_MAX + 2];
	struct stat st;
	ssize_t n;

	fd = open_key_file(path, check_mode);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return log_error_errno(-EBADFD, "API key file %s is not a regular file, refusing it.", path);
	if (check_mode) {
		if (st.st_mode & (S_IRWXG | S_IRWXO))
			return log_error_errno(-EPERM,
			                       "API key file %s is accessible by group or others (mode %04o), refusing it; "
			                       "run: chmod 0600 %s",
			                       path, (unsigned) (st.st_mode & 07777), path);
		if (st.st_uid != 0 && st.st_uid != geteuid())
			return log_error_errno(-EPERM,
			                       "API key file %s is owned by uid %u, not by root or the daemon's user (uid %u), refusing it.",
			                       path, (unsigned) st.st_uid, (unsigned) geteuid());
	}

	n = read(fd, buf, sizeof buf - 1);
	if (n < 0)
		return -errno;
	if ((size_t) n > SECRET_KEY_MAX + 1) {
		explicit_bzero(buf, sizeof buf);
		return log_error_errno(-E2BIG, "API key file %s is too large to hold an API key, refusing it.", path);
	}
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = 0;

	if (!secret_key_is_valid(buf)) {
		explicit_bzero(buf, sizeof buf);
		return log_error_errno(-EBADMSG,
		                       "API key file %s does not hold a key (expected 1-%d printable characters, no spaces).",
		                       path, SECRET_KEY_MAX);
	}

	char *key = strdup(buf);
	explicit_bzero(buf, sizeof buf);
	if (!key)
		return -ENOMEM;
	*ret_key = key;
	return 0;
}

/* Takes HITL_API_KEY out of the environment, whatever source wins: it must not
 * stay in /proc/<pid>/environ (nor reach a child) once the daemon has started.
 * The value is wiped in place, where /proc/<pid>/environ shows it. Returns 0
 * with *ret_env (NULL when unset; wipe with erase_and_freep). */
static int take_environment_key(char **ret_env) {
	char *env = getenv("HITL_API_KEY"), *copy = NULL;

	if (env) {
		copy = strdup(env);
		explicit_bzero(env, strlen(env));
		if (unsetenv("HITL_API_KEY") < 0) {
			erase_and_freep(&copy);
			return -errno;
		}
		if (!copy)
			return -ENOMEM;
	}
	*ret_env = copy;
	return 0;
}

int secret_load(const char *key_file, char **ret_key, SecretSource *ret_source) {
	_cleanup_(erase_and_freep) char *env = NULL;
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char *key = NULL;
	int r;

	r = take_environment_key(&env);
	if (r < 0)
		return log_error_errno(r, "Failed to remove HITL_API_KEY from the environment: %m");

	if (creds && *creds) {
		_cleanup_(freep) char *path = NULL;

		if (asprintf(&path, "%s/%s", creds, SECRET_CREDENTIAL_NAME) < 0)
			return -ENOMEM;
		/* systemd made the credential private to us; no mode check needed. */
		r = read_key_file(path, false, &key);
		if (r >= 0) {
			*ret_key = key;
			*ret_source = SECRET_SOURCE_CREDENTIAL;
			return 0;
		}
		if (r != -ENOENT)
			return log_error_errno(r, "Failed to read the API key from credential %s: %m", path);
	}

	if (key_file) {
		r = read_key_file(key_file, true, &key);
		if (r >= 0) {
			*ret_key = key;
			*ret_source = SECRET_SOURCE_KEY_FILE;
			return 0;
		}
		if (r != -ENOENT)
			return log_error_errno(r, "Failed to read the API key from api.key_file %s: %m", key_file);
		log_warning("api.key_file %s does not exist.", key_file);
	}

	if (env) {
		if (!secret_key_is_valid(env))
			return log_error_errno(-EBADMSG, "HITL_API_KEY does not hold a key (expected 1-%d printable characters, no spaces).",
			                       SECRET_KEY_MAX);
		*ret_key = TAKE_PTR(env);
		*ret_source = SECRET_SOURCE_ENVIRONMENT;
		return 0;
	}

	return -ENOKEY;
}

int secret_load_standby(const char *next_key_file, char **ret_key, SecretSource *ret_source) {
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char *key = NULL;
	int r;

	/* The same sources, trust checks and wiping as the current key's
	 * (secret_load), the environment excepted: one variable, one key. */
	if (creds && *creds) {
		_cleanup_(freep) char *path = NULL;

		if (asprintf(&path, "%s/%s", creds, SECRET_STANDBY_CREDENTIAL_NAME) < 0)
			return -ENOMEM;
		r = read_key_file(path, false, &key);
		if (r >= 0) {
			*ret_key = key;
			*ret_source = SECRET_SOURCE_CREDENTIAL;
			return 0;
		}
		if (r != -ENOENT)
			return log_error_errno(r, "Failed to read the standby API key from credential %s: %m", path);
	}

	if (next_key_file) {
		r = read_key_file(next_key_file, true, &key);
		if (r >= 0) {
			*ret_key = key;
			*ret_source = SECRET_SOURCE_KEY_FILE;
			return 0;
		}
		if (r != -ENOENT)
			return log_error_errno(r, "Failed to read the standby API key from api.next_key_file %s: %m",
			                       next_key_file);
		log_warning("api.next_key_file %s does not exist.", next_key_file);
	}

	return -ENOKEY;
}

int secret_protect_process(void) {
	struct rlimit rl = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return -errno;
	return 0;
}
