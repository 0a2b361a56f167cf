/* SPDX-License-Identifier: MIT */
/*
 * hw_regs_check.c - compiled with -ffreestanding -pedantic -Werror (hw-iface/CMakeLists.txt):
 * maptbl/hw_regs.h needs no libc and no GNU extension (STYLE.md §12). The _Static_asserts in the
 * header check the layout; this file uses the helpers once so they are compiled too.
 */
#include "maptbl/hw_regs.h"

unsigned hw_regs_check_reason(uint32_t info);
unsigned hw_regs_check_reason(uint32_t info)
{
	return maptbl_hw_fault_reason(info) + maptbl_hw_fault_info(MAPTBL_FAULT_HOLE, 1) +
	       maptbl_hw_get(info, MAPTBL_FUNC_NUM_SHIFT, MAPTBL_FUNC_NUM_MASK);
}
