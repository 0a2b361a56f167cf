/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * maptbl-pci.c - QEMU 7.2 glue for the maptbl controller: a PCIe physical function
 * ("maptbl-pci") with SR-IOV virtual functions ("maptbl-pci-vf") around the QEMU-free device
 * model of maptbl's hw-iface/device (mtdev.h). No device logic lives here: register accesses go
 * to mtdev_mmio_read/mtdev_mmio_write, and the model calls back for DMA (through the right
 * function's bus-master address space), disk I/O (the `drive` block backend) and interrupts
 * (MSI-X). The register map is maptbl's docs/REGISTERS.md.
 *
 *   -drive if=none,id=d0,file=disk.img,format=raw
 *   -device pcie-root-port,id=rp1,chassis=1
 *   -device maptbl-pci,bus=rp1,drive=d0,total_vfs=8
 *
 * PCI view (both kinds of function):
 *   BAR0  64-bit memory, the function's register page: 8 KiB on the PF, 4 KiB on a VF
 *         (MAPTBL_HW_PF_BAR_SIZE / MAPTBL_HW_VF_BAR_SIZE), accesses of any size reach the model,
 *         which answers a bad one with all ones and a guest error
 *   BAR2  64-bit memory, 4 KiB: the MSI-X table (offset 0) and PBA (offset 0x800), three vectors
 *         numbered as MAPTBL_VEC_* (CQ, FAULT, ERROR; a VF never raises FAULT)
 *   PCIe endpoint capability at 0x80, ARI at 0x100; the PF also has FLR and SR-IOV at 0x120
 *   (VF offset 1, stride 1, TotalVFs = total_vfs).
 *
 * Locking: every mtdev_* call happens with the BQL held (MMIO handlers, the bottom half, reset,
 * realize/exit), which is the one lock mtdev.h asks for. Requests are served by a bottom half
 * scheduled after register writes, so an MMIO store returns before the disk I/O it starts.
 *
 * The SR-IOV calls are QEMU 7.2's (pcie_sriov_pf_init returning void, VFs realized at VF
 * Enable, pcie_sriov_vf_register_bar); QEMU 9 and later changed them (QEMU.md §2.8), hence the
 * version check below.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "hw/block/block.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_sriov.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/vmstate.h"
#include "sysemu/block-backend.h"

#include "mtdev.h"

#if QEMU_VERSION_MAJOR != 7 || QEMU_VERSION_MINOR != 2
#error "maptbl-pci.c uses QEMU 7.2's SR-IOV API (pcie_sriov_pf_init without Error **)"
#endif

#define TYPE_MAPTBL_PCI "maptbl-pci"
#define TYPE_MAPTBL_PCI_VF "maptbl-pci-vf"
OBJECT_DECLARE_SIMPLE_TYPE(MaptblPCIState, MAPTBL_PCI)
OBJECT_DECLARE_SIMPLE_TYPE(MaptblPCIVFState, MAPTBL_PCI_VF)

/* PCI identity: QEMU's own vendor ID for emulated devices, device IDs "MT" and "MT" + 1. */
#define MAPTBL_PCI_DEVICE_ID	0x4d54
#define MAPTBL_PCI_VF_DEVICE_ID	0x4d55

#define MAPTBL_PCI_REG_BAR	0
#define MAPTBL_PCI_MSIX_BAR	2
#define MAPTBL_PCI_MSIX_SIZE	0x1000
#define MAPTBL_PCI_MSIX_PBA	0x800
#define MAPTBL_PCI_VECTORS	(MAPTBL_VEC_ERROR + 1)
#define MAPTBL_PCI_EXP_OFF	0x80
#define MAPTBL_PCI_ARI_OFF	0x100
#define MAPTBL_PCI_SRIOV_OFF	0x120
/* Requests served per bottom-half run before yielding to the main loop. */
#define MAPTBL_PCI_BH_BUDGET	64

struct MaptblPCIState {
	PCIDevice parent_obj;

	MemoryRegion regs;
	MemoryRegion msix;
	QEMUBH *bh;
	struct mtdev *dev;
	bool realizing;
	/*
	 * Inside an mtdev_* call. The model may not be re-entered (mtdev.h), yet its DMA can reach
	 * the device's own BARs or, through ECAM, its config space (FLR, VF Enable): QEMU 7.2's
	 * re-entrancy guard is per device, and the PF and every VF are different devices. So an
	 * MMIO access that arrives while in_model is refused (a guest error), and a reset or a VF
	 * disable that arrives then is applied to the model when the call returns.
	 */
	bool in_model;
	bool reset_pending;
	int num_vfs_pending;	/* -1, or the VF count the model must be lowered to */
	char realize_msg[256];	/* the model's reason for refusing its parameters */

	/* properties */
	BlockConf conf;
	uint16_t total_vfs;
	uint32_t block_size;
	uint32_t max_xfer;
	uint32_t xcache_entries;
	uint32_t ncache_entries;
	bool xcache;
	bool ncache;
	uint8_t verbose;
};

struct MaptblPCIVFState {
	PCIDevice parent_obj;

	MemoryRegion regs;
	MemoryRegion msix;
	MaptblPCIState *pf;
	unsigned fn;		/* model function number: SR-IOV VF index + 1 */
};

/* The PCI function behind model function @fn (0 = PF), or NULL when that VF does not exist. */
static PCIDevice *maptbl_pci_fn(MaptblPCIState *s, unsigned fn)
{
	if (fn == 0)
		return PCI_DEVICE(s);
	return pcie_sriov_get_vf_at_index(PCI_DEVICE(s), (int)fn - 1);
}

/* --- callbacks of the model ------------------------------------------------------------- */

static int maptbl_pci_dma_read(void *ctx, unsigned fn, uint64_t addr, void *buf, size_t len)
{
	PCIDevice *d = maptbl_pci_fn(ctx, fn);

	return d && pci_dma_read(d, addr, buf, len) == MEMTX_OK ? 0 : -1;
}

static int maptbl_pci_dma_write(void *ctx, unsigned fn, uint64_t addr, const void *buf,
				size_t len)
{
	PCIDevice *d = maptbl_pci_fn(ctx, fn);

	return d && pci_dma_write(d, addr, buf, len) == MEMTX_OK ? 0 : -1;
}

static int maptbl_pci_disk_read(void *ctx, unsigned fn, uint64_t off, void *buf, size_t len)
{
	MaptblPCIState *s = ctx;

	return blk_pread(s->conf.blk, (int64_t)off, (int64_t)len, buf, 0) < 0 ? -1 : 0;
}

static int maptbl_pci_disk_write(void *ctx, unsigned fn, uint64_t off, const void *buf,
				 size_t len)
{
	MaptblPCIState *s = ctx;

	return blk_pwrite(s->conf.blk, (int64_t)off, (int64_t)len, buf, 0) < 0 ? -1 : 0;
}

static int maptbl_pci_disk_flush(void *ctx, unsigned fn)
{
	MaptblPCIState *s = ctx;

	return blk_flush(s->conf.blk) < 0 ? -1 : 0;
}

static void maptbl_pci_irq(void *ctx, unsigned fn, unsigned vector)
{
	PCIDevice *d = maptbl_pci_fn(ctx, fn);

	/* MSI-X off (or a vector the function lacks): the driver polls INT_STATUS. */
	if (d && vector < MAPTBL_PCI_VECTORS && msix_enabled(d))
		msix_notify(d, vector);
}

static void maptbl_pci_log(void *ctx, enum mtdev_log_cat cat, const char *msg)
{
	MaptblPCIState *s = ctx;

	if (s->realizing)
		pstrcpy(s->realize_msg, sizeof(s->realize_msg), msg);
	switch (cat) {
	case MTDEV_LOG_GUEST_ERROR:
		qemu_log_mask(LOG_GUEST_ERROR, "%s: %s\n", TYPE_MAPTBL_PCI, msg);
		break;
	case MTDEV_LOG_UNIMP:
		qemu_log_mask(LOG_UNIMP, "%s: %s\n", TYPE_MAPTBL_PCI, msg);
		break;
	case MTDEV_LOG_INFO:
	case MTDEV_LOG_TRACE:
		if (s->verbose >= (cat == MTDEV_LOG_INFO ? 1 : 2))
			qemu_log("%s: %s\n", TYPE_MAPTBL_PCI, msg);
		break;
	}
}

static const struct mtdev_ops maptbl_pci_ops = {
	.dma_read = maptbl_pci_dma_read,
	.dma_write = maptbl_pci_dma_write,
	.disk_read = maptbl_pci_disk_read,
	.disk_write = maptbl_pci_disk_write,
	.disk_flush = maptbl_pci_disk_flush,
	.irq = maptbl_pci_irq,
	.log = maptbl_pci_log,
};

/* --- register pages --------------------------------------------------------------------- */

/* Lower the model's NUM_VFS to @n when it is above (the VFs above n left the bus). */
static void maptbl_pci_lower_num_vfs(MaptblPCIState *s, unsigned n)
{
	if (mtdev_mmio_read(s->dev, 0, MAPTBL_REG_PF_NUM_VFS, 4) > n)
		mtdev_mmio_write(s->dev, 0, MAPTBL_REG_PF_NUM_VFS, 4, n);
}

static bool maptbl_pci_enter(MaptblPCIState *s, unsigned fn, hwaddr off, const char *what)
{
	if (!s->dev)
		return false;
	if (s->in_model) {
		qemu_log_mask(LOG_GUEST_ERROR, "%s: %s of function %u at 0x%" HWADDR_PRIx
			      " while the device is busy (its own DMA?): refused\n",
			      TYPE_MAPTBL_PCI, what, fn, off);
		return false;
	}
	s->in_model = true;
	return true;
}

/* End of a model call: apply what arrived during it, and schedule the request work. */
static void maptbl_pci_leave(MaptblPCIState *s)
{
	s->in_model = false;
	if (s->reset_pending) {
		s->reset_pending = false;
		s->num_vfs_pending = -1;
		mtdev_reset(s->dev);
	}
	if (s->num_vfs_pending >= 0) {
		maptbl_pci_lower_num_vfs(s, (unsigned)s->num_vfs_pending);
		s->num_vfs_pending = -1;
	}
	if (mtdev_has_work(s->dev))
		qemu_bh_schedule(s->bh);
}

static void maptbl_pci_bh(void *opaque)
{
	MaptblPCIState *s = opaque;

	/*
	 * in_model here: the bottom half runs nested, from the aio_poll() of a synchronous disk
	 * call of the model; the outer call reschedules it when it returns.
	 */
	if (!s->dev || s->in_model)
		return;
	s->in_model = true;
	mtdev_process(s->dev, MAPTBL_PCI_BH_BUDGET);
	maptbl_pci_leave(s);
}

static uint64_t maptbl_pci_mmio_read(MaptblPCIState *s, unsigned fn, hwaddr off, unsigned size)
{
	uint64_t v;

	if (!maptbl_pci_enter(s, fn, off, "register read"))
		return size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
	v = mtdev_mmio_read(s->dev, fn, off, size);
	maptbl_pci_leave(s);
	return v;
}

static void maptbl_pci_mmio_write(MaptblPCIState *s, unsigned fn, hwaddr off, uint64_t val,
				  unsigned size)
{
	if (!maptbl_pci_enter(s, fn, off, "register write"))
		return;
	mtdev_mmio_write(s->dev, fn, off, size, val);
	maptbl_pci_leave(s);
}

static uint64_t maptbl_pci_pf_read(void *opaque, hwaddr off, unsigned size)
{
	return maptbl_pci_mmio_read(opaque, 0, off, size);
}

static void maptbl_pci_pf_write(void *opaque, hwaddr off, uint64_t val, unsigned size)
{
	maptbl_pci_mmio_write(opaque, 0, off, val, size);
}

static uint64_t maptbl_pci_vf_read(void *opaque, hwaddr off, unsigned size)
{
	MaptblPCIVFState *v = opaque;

	return maptbl_pci_mmio_read(v->pf, v->fn, off, size);
}

static void maptbl_pci_vf_write(void *opaque, hwaddr off, uint64_t val, unsigned size)
{
	MaptblPCIVFState *v = opaque;

	maptbl_pci_mmio_write(v->pf, v->fn, off, val, size);
}

/*
 * Every access size and alignment reaches the model: REGISTERS.md §1 makes the model, not the
 * bus, answer a bad access (all ones, ignored write, guest error).
 */
#define MAPTBL_PCI_MMIO_OPS(rd, wr) {				\
	.read = (rd),						\
	.write = (wr),						\
	.endianness = DEVICE_LITTLE_ENDIAN,			\
	.valid = { .min_access_size = 1, .max_access_size = 8,	\
		   .unaligned = true },				\
	.impl = { .min_access_size = 1, .max_access_size = 8,	\
		  .unaligned = true },				\
}

static const MemoryRegionOps maptbl_pci_pf_ops =
	MAPTBL_PCI_MMIO_OPS(maptbl_pci_pf_read, maptbl_pci_pf_write);
static const MemoryRegionOps maptbl_pci_vf_ops =
	MAPTBL_PCI_MMIO_OPS(maptbl_pci_vf_read, maptbl_pci_vf_write);

/* MSI-X table and PBA in their own BAR, every vector in use from the start. */
static bool maptbl_pci_init_msix(PCIDevice *d, MemoryRegion *bar, Error **errp)
{
	if (msix_init(d, MAPTBL_PCI_VECTORS, bar, MAPTBL_PCI_MSIX_BAR, 0, bar,
		      MAPTBL_PCI_MSIX_BAR, MAPTBL_PCI_MSIX_PBA, 0, errp) < 0)
		return false;
	for (unsigned v = 0; v < MAPTBL_PCI_VECTORS; v++)
		msix_vector_use(d, v);
	return true;
}

static void maptbl_pci_init_caps(PCIDevice *d)
{
	pcie_endpoint_cap_init(d, MAPTBL_PCI_EXP_OFF);
	pcie_ari_init(d, MAPTBL_PCI_ARI_OFF, 1);
}

/* --- the PF ------------------------------------------------------------------------------ */

static void maptbl_pci_realize(PCIDevice *pci_dev, Error **errp)
{
	MaptblPCIState *s = MAPTBL_PCI(pci_dev);
	struct mtdev_params p;
	int64_t len;
	int err;

	if (!s->conf.blk) {
		error_setg(errp, "drive property not set");
		return;
	}
	if (s->total_vfs < 1 || s->total_vfs > MAPTBL_HW_MAX_VFS) {
		error_setg(errp, "total_vfs must be 1 .. %u, not %u", MAPTBL_HW_MAX_VFS,
			   s->total_vfs);
		return;
	}
	if (s->xcache_entries > 65535 || s->ncache_entries > 65535) {
		error_setg(errp, "xcache_entries and ncache_entries must be 0 .. 65535");
		return;
	}
	if (!blkconf_apply_backend_options(&s->conf, !blk_supports_write_perm(s->conf.blk),
					   false, errp))
		return;
	len = blk_getlength(s->conf.blk);
	if (len <= 0) {
		error_setg(errp, "drive: cannot get its size, or it is empty");
		return;
	}

	mtdev_params_init(&p);
	p.ops = &maptbl_pci_ops;
	p.ctx = s;
	p.nr_vfs = s->total_vfs;
	p.disk_bytes = (uint64_t)len;
	p.pf_block_size = s->block_size;
	p.max_xfer_blocks = s->max_xfer;
	p.xcache_entries = s->xcache_entries;
	p.ncache_entries = s->ncache_entries;
	p.xcache_disable = !s->xcache;
	p.ncache_disable = !s->ncache;
	s->realizing = true;
	s->realize_msg[0] = '\0';
	err = mtdev_create(&p, &s->dev);
	s->realizing = false;
	if (err) {
		error_setg(errp, "device model refused its parameters: %s",
			   s->realize_msg[0] ? s->realize_msg : strerror(-err));
		return;
	}

	pci_dev->config[PCI_INTERRUPT_PIN] = 0;
	maptbl_pci_init_caps(pci_dev);
	pcie_cap_flr_init(pci_dev);

	memory_region_init_io(&s->regs, OBJECT(s), &maptbl_pci_pf_ops, s, "maptbl-pf-regs",
			      MAPTBL_HW_PF_BAR_SIZE);
	pci_register_bar(pci_dev, MAPTBL_PCI_REG_BAR,
			 PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64, &s->regs);
	memory_region_init(&s->msix, OBJECT(s), "maptbl-pf-msix", MAPTBL_PCI_MSIX_SIZE);
	pci_register_bar(pci_dev, MAPTBL_PCI_MSIX_BAR,
			 PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64, &s->msix);
	if (!maptbl_pci_init_msix(pci_dev, &s->msix, errp)) {
		mtdev_destroy(s->dev);
		s->dev = NULL;
		return;
	}

	pcie_sriov_pf_init(pci_dev, MAPTBL_PCI_SRIOV_OFF, TYPE_MAPTBL_PCI_VF,
			   MAPTBL_PCI_VF_DEVICE_ID, s->total_vfs, s->total_vfs, 1, 1);
	pcie_sriov_pf_init_vf_bar(pci_dev, MAPTBL_PCI_REG_BAR,
				  PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64,
				  MAPTBL_HW_VF_BAR_SIZE);
	pcie_sriov_pf_init_vf_bar(pci_dev, MAPTBL_PCI_MSIX_BAR,
				  PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64,
				  MAPTBL_PCI_MSIX_SIZE);

	s->num_vfs_pending = -1;
	s->bh = qemu_bh_new(maptbl_pci_bh, s);
}

static void maptbl_pci_exit(PCIDevice *pci_dev)
{
	MaptblPCIState *s = MAPTBL_PCI(pci_dev);

	pcie_sriov_pf_exit(pci_dev);
	msix_uninit(pci_dev, &s->msix, &s->msix);
	if (s->bh) {
		qemu_bh_delete(s->bh);
		s->bh = NULL;
	}
	mtdev_destroy(s->dev);
	s->dev = NULL;
}

/* PCI reset and FLR of the PF: the VFs go away and the model returns to its reset state. */
static void maptbl_pci_reset(DeviceState *qdev)
{
	MaptblPCIState *s = MAPTBL_PCI(qdev);

	pcie_sriov_pf_disable_vfs(PCI_DEVICE(s));
	if (s->in_model)
		s->reset_pending = true;	/* an FLR by the device's own DMA */
	else if (s->dev)
		mtdev_reset(s->dev);
}

/*
 * Clearing VF Enable (or lowering NumVFs with it) removes VFs from the bus; the model is told
 * the same way a driver would tell it, by lowering NUM_VFS, which drops the tables, rings and
 * stalled requests of the VFs above (REGISTERS.md §4). The count comes from QEMU's own state,
 * never from the guest-writable NumVFs config word (CVE-2024-26328).
 */
static void maptbl_pci_write_config(PCIDevice *d, uint32_t addr, uint32_t val, int len)
{
	MaptblPCIState *s = MAPTBL_PCI(d);
	uint16_t before = d->exp.sriov_pf.num_vfs, after;

	pci_default_write_config(d, addr, val, len);
	pcie_cap_flr_write_config(d, addr, val, len);
	after = d->exp.sriov_pf.num_vfs;
	if (after >= before || !s->dev)
		return;
	if (s->in_model) {	/* a config write by the device's own DMA (ECAM) */
		if (s->num_vfs_pending < 0 || s->num_vfs_pending > after)
			s->num_vfs_pending = after;
		return;
	}
	maptbl_pci_lower_num_vfs(s, after);
}

static Property maptbl_pci_props[] = {
	DEFINE_PROP_DRIVE("drive", MaptblPCIState, conf.blk),
	DEFINE_PROP_UINT16("total_vfs", MaptblPCIState, total_vfs, 8),
	DEFINE_PROP_UINT32("block_size", MaptblPCIState, block_size, 4096),
	DEFINE_PROP_UINT32("max_xfer", MaptblPCIState, max_xfer, 2048),
	DEFINE_PROP_UINT32("xcache_entries", MaptblPCIState, xcache_entries, 8),
	DEFINE_PROP_UINT32("ncache_entries", MaptblPCIState, ncache_entries, 64),
	DEFINE_PROP_BOOL("xcache", MaptblPCIState, xcache, true),
	DEFINE_PROP_BOOL("ncache", MaptblPCIState, ncache, true),
	DEFINE_PROP_UINT8("verbose", MaptblPCIState, verbose, 0),
	DEFINE_PROP_END_OF_LIST(),
};

static const VMStateDescription maptbl_pci_vmstate = {
	.name = TYPE_MAPTBL_PCI,
	.unmigratable = 1,
};

/* What the PF and VF classes share. */
static void maptbl_pci_class_common(ObjectClass *oc, uint16_t device_id, const char *desc)
{
	DeviceClass *dc = DEVICE_CLASS(oc);
	PCIDeviceClass *pc = PCI_DEVICE_CLASS(oc);

	pc->vendor_id = PCI_VENDOR_ID_QEMU;
	pc->device_id = device_id;
	pc->class_id = PCI_CLASS_STORAGE_OTHER;
	pc->revision = 1;
	set_bit(DEVICE_CATEGORY_STORAGE, dc->categories);
	dc->desc = desc;
	dc->vmsd = &maptbl_pci_vmstate;
}

static void maptbl_pci_class_init(ObjectClass *oc, void *data)
{
	DeviceClass *dc = DEVICE_CLASS(oc);
	PCIDeviceClass *pc = PCI_DEVICE_CLASS(oc);

	maptbl_pci_class_common(oc, MAPTBL_PCI_DEVICE_ID,
				"maptbl self-virtualizing storage controller (SR-IOV PF)");
	pc->realize = maptbl_pci_realize;
	pc->exit = maptbl_pci_exit;
	pc->config_write = maptbl_pci_write_config;
	dc->reset = maptbl_pci_reset;
	device_class_set_props(dc, maptbl_pci_props);
}

/* --- the VFs ----------------------------------------------------------------------------- */

static void maptbl_pci_vf_realize(PCIDevice *pci_dev, Error **errp)
{
	MaptblPCIVFState *v = MAPTBL_PCI_VF(pci_dev);
	PCIDevice *pf = pcie_sriov_get_pf(pci_dev);
	unsigned n;

	if (!pci_is_vf(pci_dev) || !pf || !object_dynamic_cast(OBJECT(pf), TYPE_MAPTBL_PCI)) {
		error_setg(errp, "%s is created by its PF (%s) only", TYPE_MAPTBL_PCI_VF,
			   TYPE_MAPTBL_PCI);
		return;
	}
	v->pf = MAPTBL_PCI(pf);
	n = pcie_sriov_vf_number(pci_dev);
	/* QEMU checks NumVFs <= TotalVFs only from 7.2.11 on (CVE-2024-26327): check anyway. */
	if (n >= v->pf->total_vfs) {
		error_setg(errp, "VF index %u beyond total_vfs %u", n, v->pf->total_vfs);
		return;
	}
	v->fn = n + 1;

	maptbl_pci_init_caps(pci_dev);
	memory_region_init_io(&v->regs, OBJECT(v), &maptbl_pci_vf_ops, v, "maptbl-vf-regs",
			      MAPTBL_HW_VF_BAR_SIZE);
	pcie_sriov_vf_register_bar(pci_dev, MAPTBL_PCI_REG_BAR, &v->regs);
	memory_region_init(&v->msix, OBJECT(v), "maptbl-vf-msix", MAPTBL_PCI_MSIX_SIZE);
	pcie_sriov_vf_register_bar(pci_dev, MAPTBL_PCI_MSIX_BAR, &v->msix);
	maptbl_pci_init_msix(pci_dev, &v->msix, errp);
}

/*
 * A VF has no Memory Space Enable of its own (PCIe Base spec, SR-IOV: the VF Command register's
 * bit 1 "does not apply to VFs"; the PF's VF MSE governs all VFs). Linux acts on that: it marks
 * VFs no_command_memory and vfio-pci never writes the bit to a VF. QEMU 7.2 decodes a VF BAR
 * only while the VF's own COMMAND.MEM is set (pci_bar_address()), so a VF driven through
 * vfio-pci never answered. The bit is kept set on every config write to COMMAND, which remaps.
 * This used to fail: tests/qemu/run.sh's vfio: guest read VF 1's registers as "Invalid read ...
 * rejected".
 */
static void maptbl_pci_vf_write_config(PCIDevice *d, uint32_t addr, uint32_t val, int len)
{
	uint16_t cmd;

	pci_default_write_config(d, addr, val, len);
	cmd = pci_get_word(d->config + PCI_COMMAND);
	if (ranges_overlap(addr, len, PCI_COMMAND, 2) && !(cmd & PCI_COMMAND_MEMORY))
		pci_default_write_config(d, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY, 2);
}

static void maptbl_pci_vf_exit(PCIDevice *pci_dev)
{
	MaptblPCIVFState *v = MAPTBL_PCI_VF(pci_dev);

	if (msix_present(pci_dev))
		msix_uninit(pci_dev, &v->msix, &v->msix);
}

static void maptbl_pci_vf_class_init(ObjectClass *oc, void *data)
{
	DeviceClass *dc = DEVICE_CLASS(oc);
	PCIDeviceClass *pc = PCI_DEVICE_CLASS(oc);

	maptbl_pci_class_common(oc, MAPTBL_PCI_VF_DEVICE_ID,
				"maptbl self-virtualizing storage controller (SR-IOV VF)");
	pc->realize = maptbl_pci_vf_realize;
	pc->exit = maptbl_pci_vf_exit;
	pc->config_write = maptbl_pci_vf_write_config;
	dc->user_creatable = false;	/* only pcie_sriov creates VFs, at VF Enable */
}

static const TypeInfo maptbl_pci_types[] = {
	{
		.name = TYPE_MAPTBL_PCI,
		.parent = TYPE_PCI_DEVICE,
		.instance_size = sizeof(MaptblPCIState),
		.class_init = maptbl_pci_class_init,
		.interfaces = (InterfaceInfo[]) { { INTERFACE_PCIE_DEVICE }, { } },
	},
	{
		.name = TYPE_MAPTBL_PCI_VF,
		.parent = TYPE_PCI_DEVICE,
		.instance_size = sizeof(MaptblPCIVFState),
		.class_init = maptbl_pci_vf_class_init,
		.interfaces = (InterfaceInfo[]) { { INTERFACE_PCIE_DEVICE }, { } },
	},
};

DEFINE_TYPES(maptbl_pci_types)
