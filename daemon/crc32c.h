/* crc32c.h — CRC-32C (Castagnoli), the checksum of the outbox log's entries.
 * Pure; the same value as iSCSI, ext4 and btrfs compute (crc32c("123456789")
 * is 0xE3069283), so a damaged entry can be told from a good one. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Continues crc over data; start with 0. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* The table-driven version alone (tests compare it with the fast path). */
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);
