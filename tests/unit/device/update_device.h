/* SPDX-License-Identifier: MIT */
/*
 * update_device.h - the device model as a lookup for test_update.c's model test (issue #7 §4).
 */
#ifndef MAPTBL_UPDATE_DEVICE_H
#define MAPTBL_UPDATE_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include <maptbl/hw_regs.h>
#include <maptbl/walk.h>

/*
 * Look @lblk up through the device model's walker over @buf (@len bytes), VF 1 programmed with
 * it through the registers; re-latched when the buffer or its virtual size changes, its caches
 * flushed when the live word changes. 0 and *r (nodes not filled), or < 0: -1 no device, -2 the
 * device refused the table, -3 translation error, -4 unknown state.
 */
int update_device_lookup(const uint8_t *buf, size_t len, uint64_t lblk, struct maptbl_walk_result *r);
/* VF 1's counter MAPTBL_STAT_* @idx (walks, cache hits and misses, nodes). */
uint64_t update_device_counter(unsigned idx);
/* The device's last guest-error log line (why it refused a table), "" if none. */
const char *update_device_last_error(void);
/* Destroy the device (the next lookup makes a new one). */
void update_device_fini(void);

#endif
