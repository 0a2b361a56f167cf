/* SPDX-License-Identifier: MIT */
/*
 * backend_pci.c - real PCI functions: "pci:BDF" and "vfio:BDF" (docs/REGISTERS.md §11.6).
 *
 * pci: the PF's BAR0 is /sys/bus/pci/devices/BDF/resource0, mapped; VF n's BAR0 is
 * .../BDF/virtfn<n-1>/resource0. DMA memory comes from 2 MiB hugepages (MAP_HUGETLB), locked,
 * and its bus address is the physical address read from /proc/self/pagemap: this works only
 * without an IOMMU translating for the device (iommu=off or passthrough) and as root. There is no
 * interrupt path without a kernel driver: wait_irq polls INT_STATUS.
 *
 * vfio: the function is bound to vfio-pci; the driver opens its IOMMU group, maps BAR0 through
 * the device fd and maps DMA memory (anonymous, locked by VFIO) at IOVAs it hands out from
 * 4 GiB up (VFIO_IOMMU_MAP_DMA). VF pages are the VFs' own vfio devices when they are in the same
 * group; interrupts are polled as with pci.
 *
 * Both are exercised by the QEMU device (issue #8); here they are built and refuse a missing
 * device with -ENODEV.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "internal.h"

#define HUGE_SZ (2u << 20)
#define VFIO_IOVA_BASE 0x100000000ull

struct bar {
	volatile uint8_t *p;	/* mmap'd, or NULL: use pread/pwrite on fd at off */
	size_t len;
	int fd;
	uint64_t off;
};

struct pci_be {
	char bdf[32];
	bool vfio;
	struct bar bars[MAPTBL_HW_MAX_VFS + 1];
	int container, devfd[MAPTBL_HW_MAX_VFS + 1];
	/* vfio: the IOMMU groups this handle opened (the PF's first), all in one container */
	int group_fd[MAPTBL_HW_MAX_VFS + 1], group_num[MAPTBL_HW_MAX_VFS + 1];
	unsigned ngroups;
	char vf_token[37];	/* vfio: the VF token (UUID) shared by the PF and its VFs */
	uint64_t next_iova;
};

/* "0000:01:00.0" or "01:00.0"; no path characters. */
static int parse_bdf(const char *arg, char *out, size_t len)
{
	unsigned d = 0, b, s, f;
	char extra;

	if (sscanf(arg, "%x:%x:%x.%x%c", &d, &b, &s, &f, &extra) != 4 &&
	    (d = 0, sscanf(arg, "%x:%x.%x%c", &b, &s, &f, &extra) != 3))
		return -EINVAL;
	if (d > 0xffff || b > 0xff || s > 0x1f || f > 7)
		return -EINVAL;
	snprintf(out, len, "%04x:%02x:%02x.%x", d, b, s, f);
	return 0;
}

/* The sysfs directory of function fn (0: the device, n: its VF n). */
static int fn_dir(const struct pci_be *b, unsigned fn, char *out, size_t len)
{
	char link[PATH_MAX];

	if (!fn) {
		snprintf(out, len, "/sys/bus/pci/devices/%s", b->bdf);
		return 0;
	}
	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/virtfn%u", b->bdf, fn - 1);
	if (!realpath(link, out))
		return -ENODEV;
	(void)len;
	return 0;
}

static void *be_of(struct maptbl_hw *hw)
{
	return hw->be;
}

static int sysfs_bar(struct maptbl_hw *hw, unsigned fn, struct bar **out)
{
	struct pci_be *b = be_of(hw);
	struct bar *bar = &b->bars[fn];
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct stat st;
	void *p;
	int fd;

	if (fn > MAPTBL_HW_MAX_VFS)
		return -ENODEV;
	if (bar->p || bar->fd > 0) {
		*out = bar;
		return 0;
	}
	if (fn_dir(b, fn, dir, sizeof(dir)))
		return -ENODEV;
	snprintf(path, sizeof(path), "%s/resource0", dir);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		int err = -errno;

		maptbl_log(MAPTBL_LOG_ERROR, "pci:%s: %s: %s", b->bdf, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err == -ENOENT ? -ENODEV : err;
	}
	bar->len = (size_t)st.st_size;
	if (bar->len < (fn ? MAPTBL_HW_VF_BAR_SIZE : MAPTBL_HW_PF_BAR_SIZE)) {
		maptbl_log(MAPTBL_LOG_ERROR, "pci:%s: %s: BAR0 of %zu bytes is too small", b->bdf, path,
			   bar->len);
		close(fd);
		return -EPROTO;
	}
	p = mmap(NULL, bar->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		maptbl_log(MAPTBL_LOG_ERROR, "pci:%s: mmap %s: %s", b->bdf, path, strerror(errno));
		return -errno;
	}
	bar->p = p;
	*out = bar;
	return 0;
}

static int vfio_bar(struct maptbl_hw *hw, unsigned fn, struct bar **out);

static int get_bar(struct maptbl_hw *hw, unsigned fn, uint32_t off, unsigned size, struct bar **out)
{
	struct pci_be *b = be_of(hw);
	int err = b->vfio ? vfio_bar(hw, fn, out) : sysfs_bar(hw, fn, out);

	if (err)
		return err;
	if ((off & (size - 1)) || off > (*out)->len || size > (*out)->len - off)
		return -EINVAL;
	return 0;
}

static int bar_read(struct maptbl_hw *hw, unsigned fn, uint32_t off, unsigned size, uint64_t *v)
{
	struct bar *bar;
	int err = get_bar(hw, fn, off, size, &bar);

	if (err)
		return err;
	if (bar->p) {
		*v = size == 4 ? *(volatile uint32_t *)(bar->p + off) : *(volatile uint64_t *)(bar->p + off);
		return 0;
	}
	*v = 0;
	if (pread(bar->fd, v, size, (off_t)(bar->off + off)) != (ssize_t)size)
		return -EIO;
	return 0;
}

static int bar_write(struct maptbl_hw *hw, unsigned fn, uint32_t off, unsigned size, uint64_t v)
{
	struct bar *bar;
	int err = get_bar(hw, fn, off, size, &bar);

	if (err)
		return err;
	if (bar->p) {
		if (size == 4)
			*(volatile uint32_t *)(bar->p + off) = (uint32_t)v;
		else
			*(volatile uint64_t *)(bar->p + off) = v;
		return 0;
	}
	if (pwrite(bar->fd, &v, size, (off_t)(bar->off + off)) != (ssize_t)size)
		return -EIO;
	return 0;
}

static int pci_read32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t *val)
{
	uint64_t v;
	int err = bar_read(hw, fn, off, 4, &v);

	*val = (uint32_t)v;
	return err;
}

static int pci_read64(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t *val)
{
	return bar_read(hw, fn, off, 8, val);
}

static int pci_write32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val)
{
	return bar_write(hw, fn, off, 4, val);
}

static int pci_write64(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t val)
{
	return bar_write(hw, fn, off, 8, val);
}

static int common_open(struct maptbl_hw *hw, const char *arg, bool vfio)
{
	const char *kind = vfio ? "vfio" : "pci";
	struct pci_be *b;
	char dir[PATH_MAX];
	struct stat st;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->vfio = vfio;
	b->container = -1;
	b->next_iova = VFIO_IOVA_BASE;
	if (parse_bdf(arg, b->bdf, sizeof(b->bdf))) {
		maptbl_log(MAPTBL_LOG_ERROR, "%s:%s: not a PCI address (DDDD:BB:DD.F)", kind, arg);
		free(b);
		return -EINVAL;
	}
	fn_dir(b, 0, dir, sizeof(dir));
	if (stat(dir, &st)) {
		maptbl_log(MAPTBL_LOG_ERROR, "%s:%s: no such PCI device (%s)", kind, b->bdf, dir);
		free(b);
		return -ENODEV;
	}
	hw->be = b;
	return 0;
}

static void unmap_bars(struct pci_be *b)
{
	for (unsigned i = 0; i <= MAPTBL_HW_MAX_VFS; i++)
		if (b->bars[i].p)
			munmap((void *)b->bars[i].p, b->bars[i].len);
}

static int pci_open(struct maptbl_hw *hw, const char *arg)
{
	struct bar *bar;
	int err = common_open(hw, arg, false);

	if (err)
		return err;
	err = sysfs_bar(hw, 0, &bar);
	if (err) {
		free(hw->be);
		hw->be = NULL;
	}
	return err;
}

static void pci_close(struct maptbl_hw *hw)
{
	struct pci_be *b = be_of(hw);

	if (!b)
		return;
	unmap_bars(b);
	for (unsigned i = 0; i <= MAPTBL_HW_MAX_VFS; i++)
		if (b->devfd[i] > 0)
			close(b->devfd[i]);
	for (unsigned i = 0; i < b->ngroups; i++)
		close(b->group_fd[i]);
	if (b->container >= 0)
		close(b->container);
	free(b);
	hw->be = NULL;
}

/* Physical address of the page at @p, from /proc/self/pagemap (root only). */
static int virt_to_phys(const void *p, uint64_t *phys)
{
	long psz = sysconf(_SC_PAGESIZE);
	uint64_t ent, vpn = (uintptr_t)p / (uint64_t)psz;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, &ent, sizeof(ent), (off_t)(vpn * sizeof(ent)));
	close(fd);
	if (n != (ssize_t)sizeof(ent))
		return -EIO;
	if (!(ent & (1ull << 63)) || !(ent & ((1ull << 55) - 1)))
		return -EACCES; /* not present, or the PFN hidden from a non-root reader */
	*phys = (ent & ((1ull << 55) - 1)) * (uint64_t)psz + (uintptr_t)p % (uint64_t)psz;
	return 0;
}

static int pci_dma_alloc(struct maptbl_hw *hw, size_t len, unsigned flags, void **vaddr,
			 uint64_t *addr, void **priv)
{
	size_t maplen = (len + HUGE_SZ - 1) & ~(size_t)(HUGE_SZ - 1);
	uint64_t phys0, phys;
	uint8_t *p;
	int err;

	(void)hw, (void)flags; /* process memory: never outlives the process */
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_LOCKED | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED) {
		maptbl_log(MAPTBL_LOG_ERROR, "pci: %zu bytes of hugepages: %s (see /proc/sys/vm/nr_hugepages)",
			   maplen, strerror(errno));
		return -ENOMEM;
	}
	memset(p, 0, maplen);
	err = virt_to_phys(p, &phys0);
	/* The device needs one contiguous bus range: each 2 MiB page must follow the last. */
	for (size_t o = HUGE_SZ; !err && o < maplen; o += HUGE_SZ) {
		err = virt_to_phys(p + o, &phys);
		if (!err && phys != phys0 + o)
			err = -ENOMEM;
	}
	if (err) {
		maptbl_log(MAPTBL_LOG_ERROR, "pci: no physically contiguous DMA memory of %zu bytes: %s",
			   maplen, strerror(-err));
		munmap(p, maplen);
		return err;
	}
	*vaddr = p;
	*addr = phys0;
	*priv = NULL;
	return 0;
}

static void pci_dma_free(struct maptbl_hw *hw, void *vaddr, uint64_t addr, size_t len, void *priv,
			 bool keep)
{
	struct pci_be *b = be_of(hw);
	size_t maplen = (len + HUGE_SZ - 1) & ~(size_t)(HUGE_SZ - 1);

	(void)priv;
	/*
	 * A persistent buffer (a pushed table) stays mapped and pinned for the life of this
	 * process: the device reads it after the handle is gone, and nothing else may be given
	 * that memory (hence `maptbl push --hold` on pci: and vfio:).
	 */
	if (keep)
		return;
	if (b->vfio && b->container >= 0) {
		struct vfio_iommu_type1_dma_unmap um = { .argsz = sizeof(um), .iova = addr,
							 .size = maplen };

		ioctl(b->container, VFIO_IOMMU_UNMAP_DMA, &um);
	}
	munmap(vaddr, maplen);
}

static int pci_dma_release(struct maptbl_hw *hw, uint64_t addr)
{
	(void)hw, (void)addr;
	return -ENOENT; /* only this process's buffers exist, and the handle list covers them */
}

static void *pci_dma_map(struct maptbl_hw *hw, uint64_t addr, size_t len)
{
	for (struct maptbl_hw_dma *d = hw->dmas; d; d = d->next)
		if (addr >= d->addr && addr - d->addr <= d->len && len <= d->len - (addr - d->addr))
			return (uint8_t *)d->vaddr + (addr - d->addr);
	return NULL;
}

static int pci_wait_irq(struct maptbl_hw *hw, unsigned fn, int timeout_ms, uint32_t *vectors)
{
	return hw_poll_irq(hw, fn, timeout_ms, vectors);
}

const struct maptbl_hw_ops hw_pci_ops = {
	.name = "pci",
	.open = pci_open,
	.close = pci_close,
	.read32 = pci_read32,
	.read64 = pci_read64,
	.write32 = pci_write32,
	.write64 = pci_write64,
	.dma_alloc = pci_dma_alloc,
	.dma_free = pci_dma_free,
	.dma_release = pci_dma_release,
	.dma_map = pci_dma_map,
	.wait_irq = pci_wait_irq,
};

/* ---- vfio ---- */

static int iommu_group_of(const char *dir, int *group)
{
	char link[PATH_MAX + 16], target[PATH_MAX];
	const char *slash;

	snprintf(link, sizeof(link), "%s/iommu_group", dir);
	if (!realpath(link, target))
		return -ENODEV;
	slash = strrchr(target, '/');
	*group = atoi(slash ? slash + 1 : target);
	return 0;
}

/*
 * The fd of IOMMU group @group in our container, opening it and adding it to the container the
 * first time. Each VF behind an ACS port has a group of its own (QEMU's pcie-root-port has ACS),
 * so a handle usually holds the PF's group and one per VF it touches; VFIO_IOMMU_MAP_DMA on the
 * container maps every buffer for all of them (type1 replays earlier mappings into a group that
 * joins later), which the device needs: the table walk is the PF's DMA, rings and data a VF's.
 */
static int vfio_group(struct pci_be *b, int group, int *fd)
{
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	char path[64];
	int g;

	for (unsigned i = 0; i < b->ngroups; i++)
		if (b->group_num[i] == group) {
			*fd = b->group_fd[i];
			return 0;
		}
	if (b->ngroups == MAPTBL_HW_MAX_VFS + 1)
		return -ENOSPC;
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	g = open(path, O_RDWR | O_CLOEXEC);
	if (g < 0) {
		int err = errno == ENOENT ? -ENODEV : -errno;

		maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: %s: %s%s", b->bdf, path, strerror(errno),
			   errno == EBUSY ? " (another process holds it)"
					  : " (is every device of the group bound to vfio-pci?)");
		return err;
	}
	if (ioctl(g, VFIO_GROUP_GET_STATUS, &gs) || !(gs.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: IOMMU group %d is not viable (bind every device "
			   "of /sys/kernel/iommu_groups/%d/devices to vfio-pci)", b->bdf, group, group);
		close(g);
		return -EBUSY;
	}
	if (ioctl(g, VFIO_GROUP_SET_CONTAINER, &b->container) ||
	    (!b->ngroups && ioctl(b->container, VFIO_SET_IOMMU,
				  ioctl(b->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0
					  ? VFIO_TYPE1v2_IOMMU : VFIO_TYPE1_IOMMU))) {
		int err = -errno;

		/* EPERM from VFIO_SET_IOMMU: no interrupt remapping (intel-iommu intremap=off) */
		maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: IOMMU group %d: %s: %s", b->bdf, group,
			   b->ngroups ? "cannot join the container" : "no type1 IOMMU", strerror(errno));
		close(g);
		return err;
	}
	b->group_fd[b->ngroups] = g;
	b->group_num[b->ngroups++] = group;
	*fd = g;
	return 0;
}

/* Sets Memory Space and Bus Master in the COMMAND register of the vfio device @fd. */
static int vfio_enable_master(struct pci_be *b, int fd, const char *name)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	uint16_t cmd;

	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &ri) ||
	    pread(fd, &cmd, 2, (off_t)(ri.offset + 4)) != 2)
		goto fail;
	cmd |= 0x6; /* PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER (host byte order: x86 and friends) */
	if (pwrite(fd, &cmd, 2, (off_t)(ri.offset + 4)) == 2)
		return 0;
fail:
	maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: %s: COMMAND register: %s", b->bdf, name, strerror(errno));
	return -errno;
}

static int vfio_bar(struct maptbl_hw *hw, unsigned fn, struct bar **out)
{
	struct pci_be *b = be_of(hw);
	struct bar *bar = &b->bars[fn];
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX };
	char dir[PATH_MAX], req[PATH_MAX + 64];
	const char *name;
	int fd, group, gfd = -1, err;
	void *p;

	if (fn > MAPTBL_HW_MAX_VFS)
		return -ENODEV;
	if (b->devfd[fn] > 0) {
		*out = bar;
		return 0;
	}
	if (fn_dir(b, fn, dir, sizeof(dir)))
		return -ENODEV;
	if (iommu_group_of(dir, &group)) {
		maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: %s has no IOMMU group (is the IOMMU on?)", b->bdf,
			   dir);
		return -ENODEV;
	}
	if ((err = vfio_group(b, group, &gfd)))
		return err;
	name = strrchr(dir, '/');
	name = name ? name + 1 : dir;
	/*
	 * vfio-pci asks for the VF token (a UUID the PF's user sets) from every user of a VF whose
	 * PF is bound to vfio-pci, and from the PF's own user while VFs are in use
	 * (Documentation/driver-api/vfio-pci-device-specific-driver-acceptance and
	 * vfio_pci_validate_vf_token()).
	 */
	if (fn || b->vf_token[0])
		snprintf(req, sizeof(req), "%s vf_token=%s", name, b->vf_token);
	else
		snprintf(req, sizeof(req), "%s", name);
	fd = ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, req);
	if (fd < 0) {
		err = -errno;
		if (errno == EACCES && !fn)
			maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: the VFs are in use: give their VF token "
				   "(vfio:%s,vf_token=UUID)", b->bdf, b->bdf);
		else
			maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: device %s: %s%s", b->bdf, name,
				   strerror(errno), errno == EACCES ? " (wrong VF token)" : "");
		return err;
	}
	if (!fn && !b->vf_token[0]) {
		/* Our own token; a PF without SR-IOV has none (ENOTTY): its VFs need none. */
		uint32_t ftbuf[(sizeof(struct vfio_device_feature) + 16) / 4] = { 0 };
		struct vfio_device_feature *ft = (struct vfio_device_feature *)ftbuf;
		FILE *r = fopen("/proc/sys/kernel/random/uuid", "re");

		if (!r || !fgets(b->vf_token, sizeof(b->vf_token), r) || strlen(b->vf_token) != 36) {
			b->vf_token[0] = 0;
		} else {
			ft->argsz = sizeof(ftbuf);
			ft->flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN;
			for (unsigned i = 0, j = 0; i < 16; i++, j += 2) {
				j += b->vf_token[j] == '-';
				sscanf(b->vf_token + j, "%2hhx", &ft->data[i]);
			}
			if (ioctl(fd, VFIO_DEVICE_FEATURE, ft) && errno != ENOTTY)
				maptbl_log(MAPTBL_LOG_WARN, "vfio:%s: cannot set a VF token: %s",
					   b->bdf, strerror(errno));
		}
		if (r)
			fclose(r);
	}
	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &ri) || (err = vfio_enable_master(b, fd, name))) {
		err = err ? err : -errno;
		close(fd);
		return err;
	}
	bar->fd = fd;
	bar->off = ri.offset;
	bar->len = (size_t)ri.size;
	if (bar->len < (fn ? MAPTBL_HW_VF_BAR_SIZE : MAPTBL_HW_PF_BAR_SIZE)) {
		maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: %s: BAR0 of %zu bytes is too small", b->bdf, name,
			   bar->len);
		close(fd);
		bar->fd = 0;
		return -EPROTO;
	}
	if (ri.flags & VFIO_REGION_INFO_FLAG_MMAP) {
		p = mmap(NULL, bar->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)ri.offset);
		if (p != MAP_FAILED)
			bar->p = p;
	}
	b->devfd[fn] = fd;
	*out = bar;
	return 0;
}

/* "BDF" or "BDF,vf_token=UUID". */
static int vfio_open(struct maptbl_hw *hw, const char *arg)
{
	static const char key[] = ",vf_token=";
	const char *tok = strstr(arg, key);
	char bdf[64];
	struct pci_be *b;
	struct bar *bar;
	size_t n = tok ? (size_t)(tok - arg) : strlen(arg);
	int err;

	if (n >= sizeof(bdf) || (tok && strlen(tok + sizeof(key) - 1) != 36)) {
		maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: not BDF or BDF,vf_token=UUID", arg);
		return -EINVAL;
	}
	memcpy(bdf, arg, n);
	bdf[n] = 0;
	if ((err = common_open(hw, bdf, true)))
		return err;
	b = be_of(hw);
	if (tok)
		snprintf(b->vf_token, sizeof(b->vf_token), "%s", tok + sizeof(key) - 1);
	b->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (b->container < 0) {
		err = errno == ENOENT ? -ENODEV : -errno;
		maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: /dev/vfio/vfio: %s (vfio module loaded?)", b->bdf,
			   strerror(errno));
		goto fail;
	}
	if (!(err = vfio_bar(hw, 0, &bar)))
		return 0;
fail:
	pci_close(hw);
	return err;
}

static int vfio_dma_alloc(struct maptbl_hw *hw, size_t len, unsigned flags, void **vaddr,
			  uint64_t *addr, void **priv)
{
	struct pci_be *b = be_of(hw);
	size_t maplen = (len + HUGE_SZ - 1) & ~(size_t)(HUGE_SZ - 1);
	struct vfio_iommu_type1_dma_map dm = { .argsz = sizeof(dm),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE };
	void *p;

	(void)flags;
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	dm.vaddr = (uintptr_t)p;
	dm.size = maplen;
	dm.iova = b->next_iova;
	if (ioctl(b->container, VFIO_IOMMU_MAP_DMA, &dm)) {
		int err = -errno;

		maptbl_log(MAPTBL_LOG_ERROR, "vfio:%s: VFIO_IOMMU_MAP_DMA of %zu bytes: %s", b->bdf,
			   maplen, strerror(errno));
		munmap(p, maplen);
		return err;
	}
	b->next_iova += maplen;
	*vaddr = p;
	*addr = dm.iova;
	*priv = NULL;
	return 0;
}

const struct maptbl_hw_ops hw_vfio_ops = {
	.name = "vfio",
	.open = vfio_open,
	.close = pci_close,
	.read32 = pci_read32,
	.read64 = pci_read64,
	.write32 = pci_write32,
	.write64 = pci_write64,
	.dma_alloc = vfio_dma_alloc,
	.dma_free = pci_dma_free,
	.dma_release = pci_dma_release,
	.dma_map = pci_dma_map,
	.wait_irq = pci_wait_irq,
};
