/* SPDX-License-Identifier: MIT */
/*
 * queue.c - request and completion rings, request execution, faults and the PF fault queue
 * (REGISTERS.md §3, §4, §6, §7).
 *
 * A request is read from the ring, checked whole (opcode, reserved fields, segments, range)
 * before any data moves, then executed run by run: a VF's blocks are translated (walk.c), the
 * PF's are used as they are. Data move through one bounce buffer in pieces of at most
 * MTDEV_BOUNCE_SIZE bytes. A write (or any access to an absent range) that meets an unmapped run
 * stalls the request where it stands and raises a fault; WALK_AGAIN resumes it.
 */
#include <string.h>

#include "internal.h"

static bool ring_cfg_ok(uint64_t base, uint32_t size, uint32_t esz)
{
	return size >= MAPTBL_HW_RING_MIN && size <= MAPTBL_HW_RING_MAX && !(size & (size - 1)) &&
	       !(base % MAPTBL_HW_RING_ALIGN) && mtdev_range_ok(base, (uint64_t)size * esz);
}

/* Drop the request in progress (counted as ABORTED, never posted). */
void mtdev_q_drop(struct mtdev *d, struct mtdev_fn *f)
{
	if (f->busy) {
		mtdev_log(d, MTDEV_LOG_INFO, "function %u: request tag %u aborted", f->num, f->cur.tag);
		f->stats[MAPTBL_STAT_REQUESTS]++;
		f->stats[MAPTBL_STAT_ERRORS]++;
	}
	f->busy = false;
	f->stalled = false;
	f->fault_unposted = false;
	f->rq_head = f->rq_tail = f->cq_head = f->cq_tail = 0;
}

void mtdev_q_stop(struct mtdev *d, struct mtdev_fn *f, unsigned qerr)
{
	mtdev_q_drop(d, f);
	f->q_ctrl = 0;
	f->q_status = maptbl_hw_set(MAPTBL_Q_STATUS_ERROR, MAPTBL_Q_STATUS_ERR_SHIFT,
				    MAPTBL_Q_STATUS_ERR_MASK, qerr);
	mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "function %u: rings stopped, error %u", f->num, qerr);
	mtdev_raise(d, f, MAPTBL_VEC_ERROR);
	if (f->num)
		mtdev_error(d, f->num, MAPTBL_ERRSRC_RING, qerr);
	else
		d->last_error = maptbl_hw_set(maptbl_hw_set(0, MAPTBL_LAST_ERROR_CODE_SHIFT,
							    MAPTBL_LAST_ERROR_CODE_MASK, qerr),
					      MAPTBL_LAST_ERROR_SRC_SHIFT,
					      MAPTBL_LAST_ERROR_SRC_MASK, MAPTBL_ERRSRC_RING);
}

void mtdev_q_ctrl(struct mtdev *d, struct mtdev_fn *f, uint32_t val)
{
	bool on = val & MAPTBL_Q_CTRL_ENABLE;

	if (val & ~MAPTBL_Q_CTRL_ENABLE)
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "function %u Q_CTRL: reserved bits 0x%x", f->num,
			  val & ~MAPTBL_Q_CTRL_ENABLE);
	if (on == !!(f->q_ctrl & MAPTBL_Q_CTRL_ENABLE))
		return;
	if (!on) {
		mtdev_q_drop(d, f);
		f->q_ctrl = 0;
		f->q_status = 0;
		return;
	}
	if (!ring_cfg_ok(f->rq_base, f->rq_size, sizeof(struct maptbl_hw_req)) ||
	    !ring_cfg_ok(f->cq_base, f->cq_size, sizeof(struct maptbl_hw_cpl))) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
			  "function %u: rings at 0x%llx (%u) and 0x%llx (%u) refused: sizes are powers of two 2..4096, bases multiples of 64",
			  f->num, (unsigned long long)f->rq_base, f->rq_size,
			  (unsigned long long)f->cq_base, f->cq_size);
		mtdev_q_stop(d, f, MAPTBL_QERR_BAD_CONFIG);
		return;
	}
	mtdev_q_drop(d, f);
	f->cq_phase = MAPTBL_CPL_F_PHASE;
	f->q_ctrl = MAPTBL_Q_CTRL_ENABLE;
	f->q_status = MAPTBL_Q_STATUS_RUNNING;
}

void mtdev_fq_ctrl(struct mtdev *d, uint32_t val)
{
	bool on = val & MAPTBL_FQ_CTRL_ENABLE;

	if (val & ~MAPTBL_FQ_CTRL_ENABLE)
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "FQ_CTRL: reserved bits 0x%x",
			  val & ~MAPTBL_FQ_CTRL_ENABLE);
	if (on == !!(d->fq_ctrl & MAPTBL_FQ_CTRL_ENABLE))
		return;
	d->fq_tail = d->fq_head = 0;
	if (!on) {
		d->fq_ctrl = 0;
		d->fq_status = 0;
		return;
	}
	if (!ring_cfg_ok(d->fq_base, d->fq_size, sizeof(struct maptbl_hw_fault))) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "fault queue at 0x%llx (%u entries) refused",
			  (unsigned long long)d->fq_base, d->fq_size);
		d->fq_status = maptbl_hw_set(MAPTBL_FQ_STATUS_ERROR, MAPTBL_FQ_STATUS_ERR_SHIFT,
					     MAPTBL_FQ_STATUS_ERR_MASK, MAPTBL_QERR_BAD_CONFIG);
		mtdev_error(d, 0, MAPTBL_ERRSRC_FQ, MAPTBL_QERR_BAD_CONFIG);
		return;
	}
	d->fq_ctrl = MAPTBL_FQ_CTRL_ENABLE;
	d->fq_status = MAPTBL_FQ_STATUS_RUNNING;
	d->fq_phase = MAPTBL_FAULT_F_PHASE;
}

static bool fq_room(const struct mtdev *d)
{
	return (d->fq_status & MAPTBL_FQ_STATUS_RUNNING) &&
	       (d->fq_tail + 1) % d->fq_size != d->fq_head;
}

/* Write waiting faults into the fault queue, oldest first, while there is room. */
void mtdev_fq_post(struct mtdev *d)
{
	for (;;) {
		struct mtdev_fn *best = NULL;
		struct maptbl_hw_fault e;
		unsigned i;

		for (i = 1; i <= d->max_vfs; i++)
			if (d->fn[i].fault_unposted &&
			    (!best || d->fn[i].fault.seq - best->fault.seq > UINT32_MAX / 2))
				best = &d->fn[i];
		if (!best) {
			d->fq_status &= ~MAPTBL_FQ_STATUS_FULL;
			return;
		}
		if (!fq_room(d)) {
			if (d->fq_status & MAPTBL_FQ_STATUS_RUNNING)
				d->fq_status |= MAPTBL_FQ_STATUS_FULL;
			return;
		}
		memset(&e, 0, sizeof(e));
		e.lba = maptbl_cpu_to_le64(best->fault.lba);
		e.count = maptbl_cpu_to_le32(best->fault.count);
		e.tag = maptbl_cpu_to_le32(best->fault.tag);
		e.vf = maptbl_cpu_to_le16((uint16_t)best->num);
		e.info = maptbl_cpu_to_le16(best->fault.info);
		e.seq = maptbl_cpu_to_le32(best->fault.seq);
		e.flags = maptbl_cpu_to_le16(d->fq_phase);
		if (d->ops.dma_write(d->ctx, 0, d->fq_base + (uint64_t)d->fq_tail * sizeof(e), &e,
				     sizeof(e))) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
				  "fault queue entry %u at 0x%llx not writable: queue stopped",
				  d->fq_tail, (unsigned long long)d->fq_base);
			d->fq_ctrl = 0;
			d->fq_status = maptbl_hw_set(MAPTBL_FQ_STATUS_ERROR, MAPTBL_FQ_STATUS_ERR_SHIFT,
						     MAPTBL_FQ_STATUS_ERR_MASK, MAPTBL_QERR_DMA);
			mtdev_error(d, 0, MAPTBL_ERRSRC_FQ, MAPTBL_QERR_DMA);
			return;
		}
		best->fault_unposted = false;
		d->fq_tail = (d->fq_tail + 1) % d->fq_size;
		if (!d->fq_tail)
			d->fq_phase ^= MAPTBL_FAULT_F_PHASE;
		mtdev_raise(d, &d->fn[0], MAPTBL_VEC_FAULT);
	}
}

/* Post the completion of the current (or a rejected) request. */
static void complete(struct mtdev *d, struct mtdev_fn *f, uint32_t tag, unsigned status,
		     uint32_t blocks)
{
	struct maptbl_hw_cpl c;

	f->busy = false;
	f->stalled = false;
	d->completions++;
	f->stats[MAPTBL_STAT_REQUESTS]++;
	if (status != MAPTBL_ST_OK)
		f->stats[MAPTBL_STAT_ERRORS]++;
	memset(&c, 0, sizeof(c));
	c.tag = maptbl_cpu_to_le32(tag);
	c.status = maptbl_cpu_to_le16((uint16_t)status);
	c.flags = maptbl_cpu_to_le16(f->cq_phase);
	c.blocks = maptbl_cpu_to_le32(blocks);
	c.rq_head = maptbl_cpu_to_le16((uint16_t)f->rq_head);
	if (d->ops.dma_write(d->ctx, f->num, f->cq_base + (uint64_t)f->cq_tail * sizeof(c), &c,
			     sizeof(c))) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "function %u: completion entry %u not writable",
			  f->num, f->cq_tail);
		mtdev_q_stop(d, f, MAPTBL_QERR_DMA);
		return;
	}
	f->cq_tail = (f->cq_tail + 1) % f->cq_size;
	if (!f->cq_tail)
		f->cq_phase ^= MAPTBL_CPL_F_PHASE;
	if (status != MAPTBL_ST_OK)
		mtdev_log(d, MTDEV_LOG_TRACE, "function %u: tag %u completed with status %u after %u blocks",
			  f->num, tag, status, blocks);
	mtdev_raise(d, f, MAPTBL_VEC_CQ);
}

static uint32_t fn_block_size(const struct mtdev *d, const struct mtdev_fn *f)
{
	return f->num ? f->tbl.block_size : d->pf_block_size;
}

static uint64_t fn_blocks(const struct mtdev *d, const struct mtdev_fn *f)
{
	return f->num ? f->tbl.virt_blocks : d->disk_bytes / d->pf_block_size;
}

/* The inline segments of @q are all zero (no data, or INDIRECT). */
static bool zero_segs(const struct maptbl_hw_req *q)
{
	const uint8_t *p = (const uint8_t *)q->seg;
	size_t i;

	for (i = 0; i < sizeof(q->seg); i++)
		if (p[i])
			return false;
	return true;
}

/* Check and parse ring entry @q into f->cur. Returns a completion status. */
static unsigned parse(struct mtdev *d, struct mtdev_fn *f, const struct maptbl_hw_req *q)
{
	struct mtdev_req *r = &f->cur;
	bool data, indirect = q->flags & MAPTBL_REQ_F_INDIRECT;
	uint64_t sgl = maptbl_le64_to_cpu(q->sgl), total = 0, blocks;
	uint32_t i, bs;

	r->opcode = q->opcode;
	r->flags = q->flags;
	r->tag = maptbl_le32_to_cpu(q->tag);
	r->lba = maptbl_le64_to_cpu(q->lba);
	r->nblocks = maptbl_le32_to_cpu(q->nblocks);
	r->nseg = maptbl_le16_to_cpu(q->nseg);
	r->done = 0;
	if (r->opcode < MAPTBL_OP_READ || r->opcode > MAPTBL_OP_WRITE_ZEROES)
		return MAPTBL_ST_BAD_OPCODE;
	data = r->opcode == MAPTBL_OP_READ || r->opcode == MAPTBL_OP_WRITE;
	if ((r->flags & ~MAPTBL_REQ_F_KNOWN) || maptbl_le32_to_cpu(q->reserved0) ||
	    ((r->flags & MAPTBL_REQ_F_FUA) && r->opcode != MAPTBL_OP_WRITE &&
	     r->opcode != MAPTBL_OP_WRITE_ZEROES) ||
	    (indirect && !data) || (!indirect && sgl) || (indirect && sgl % 8))
		return MAPTBL_ST_BAD_REQUEST;
	if (indirect || !data) {
		if (!zero_segs(q))
			return MAPTBL_ST_BAD_REQUEST;
	}
	if (r->opcode == MAPTBL_OP_FLUSH) {
		if (r->lba || r->nblocks || r->nseg)
			return MAPTBL_ST_BAD_REQUEST;
		return f->num && !f->tbl.valid ? MAPTBL_ST_NOT_READY : MAPTBL_ST_OK;
	}
	if (!r->nblocks || r->nblocks > d->max_xfer || (data ? !r->nseg || r->nseg > MAPTBL_HW_MAX_SEGS
							    : r->nseg != 0) ||
	    (data && !indirect && r->nseg > MAPTBL_REQ_INLINE_SEGS))
		return MAPTBL_ST_BAD_REQUEST;
	if (f->num && !f->tbl.valid)
		return MAPTBL_ST_NOT_READY;
	if (r->opcode != MAPTBL_OP_READ && f->num && (f->cfg.ctrl & MAPTBL_VFCFG_CTRL_READ_ONLY))
		return MAPTBL_ST_READ_ONLY;
	blocks = fn_blocks(d, f);
	if (r->nblocks > blocks || r->lba > blocks - r->nblocks)
		return MAPTBL_ST_OUT_OF_RANGE;
	if (!data)
		return MAPTBL_ST_OK;
	if (indirect) {
		struct maptbl_hw_seg *list = (struct maptbl_hw_seg *)d->bounce;
		uint64_t bytes = (uint64_t)r->nseg * sizeof(*list);

		if (!mtdev_range_ok(sgl, bytes) ||
		    d->ops.dma_read(d->ctx, f->num, sgl, list, (size_t)bytes))
			return MAPTBL_ST_DMA_ERROR;
		for (i = 0; i < r->nseg; i++) {
			if (maptbl_le32_to_cpu(list[i].reserved))
				return MAPTBL_ST_BAD_REQUEST;
			r->seg[i].addr = maptbl_le64_to_cpu(list[i].addr);
			r->seg[i].len = maptbl_le32_to_cpu(list[i].len);
		}
	} else {
		for (i = 0; i < MAPTBL_REQ_INLINE_SEGS; i++) {
			const struct maptbl_hw_seg *s = &q->seg[i];

			if (i >= r->nseg) {
				if (maptbl_le64_to_cpu(s->addr) || maptbl_le32_to_cpu(s->len) ||
				    maptbl_le32_to_cpu(s->reserved))
					return MAPTBL_ST_BAD_REQUEST;
				continue;
			}
			if (maptbl_le32_to_cpu(s->reserved))
				return MAPTBL_ST_BAD_REQUEST;
			r->seg[i].addr = maptbl_le64_to_cpu(s->addr);
			r->seg[i].len = maptbl_le32_to_cpu(s->len);
		}
	}
	for (i = 0; i < r->nseg; i++) {
		if (!r->seg[i].len)
			return MAPTBL_ST_BAD_REQUEST;
		total += r->seg[i].len;
	}
	bs = fn_block_size(d, f);
	if (total != (uint64_t)r->nblocks * bs)
		return MAPTBL_ST_BAD_REQUEST;
	for (i = 0; i < r->nseg; i++)
		if (!mtdev_range_ok(r->seg[i].addr, r->seg[i].len))
			return MAPTBL_ST_DMA_ERROR;
	return MAPTBL_ST_OK;
}

/*
 * Move @bytes bytes between the bounce buffer and the current request's buffers, starting
 * @boff bytes into them; @to_host: bounce -> buffers. Returns 0, or -1 on a DMA failure.
 */
static int buf_xfer(struct mtdev *d, struct mtdev_fn *f, uint64_t boff, uint32_t bytes,
		    bool to_host)
{
	const struct mtdev_req *r = &f->cur;
	uint8_t *b = d->bounce;
	uint64_t pos = 0;
	uint32_t i = 0;

	while (i < r->nseg && pos + r->seg[i].len <= boff)
		pos += r->seg[i++].len;
	while (bytes) {
		uint64_t in, n;
		int rc;

		if (i >= r->nseg)
			return -1;	/* cannot happen: parse() checked the lengths add up */
		in = boff - pos;
		n = r->seg[i].len - in;
		if (n > bytes)
			n = bytes;
		rc = to_host ? d->ops.dma_write(d->ctx, f->num, r->seg[i].addr + in, b, (size_t)n)
			     : d->ops.dma_read(d->ctx, f->num, r->seg[i].addr + in, b, (size_t)n);
		if (rc)
			return -1;
		f->stats[MAPTBL_STAT_DMA_BYTES] += n;
		b += n;
		bytes -= (uint32_t)n;
		boff += n;
		pos += r->seg[i++].len;
	}
	return 0;
}

/*
 * Do @n blocks of the current request from block f->cur.done on: with the disk at byte @doff
 * when @mapped, else as zeros. *moved = blocks finished. Returns a completion status.
 */
static unsigned move(struct mtdev *d, struct mtdev_fn *f, uint64_t n, bool mapped, uint64_t doff,
		     uint64_t *moved)
{
	const struct mtdev_req *r = &f->cur;
	uint32_t bs = fn_block_size(d, f);
	uint64_t boff = (uint64_t)r->done * bs, bytes = n * bs, off = 0;

	*moved = 0;
	while (off < bytes) {
		uint32_t chunk = bytes - off < MTDEV_BOUNCE_SIZE ? (uint32_t)(bytes - off)
								 : MTDEV_BOUNCE_SIZE;

		switch (r->opcode) {
		case MAPTBL_OP_READ:
			if (!mapped)
				memset(d->bounce, 0, chunk);
			else if (d->ops.disk_read(d->ctx, f->num, doff + off, d->bounce, chunk))
				return MAPTBL_ST_IO_ERROR;
			if (buf_xfer(d, f, boff + off, chunk, true))
				return MAPTBL_ST_DMA_ERROR;
			break;
		case MAPTBL_OP_WRITE:
			if (buf_xfer(d, f, boff + off, chunk, false))
				return MAPTBL_ST_DMA_ERROR;
			if (d->ops.disk_write(d->ctx, f->num, doff + off, d->bounce, chunk))
				return MAPTBL_ST_IO_ERROR;
			break;
		default:	/* WRITE_ZEROES of mapped blocks */
			memset(d->bounce, 0, chunk);
			if (d->ops.disk_write(d->ctx, f->num, doff + off, d->bounce, chunk))
				return MAPTBL_ST_IO_ERROR;
			break;
		}
		off += chunk;
		*moved = off / bs;	/* chunks are whole blocks: both are powers of two */
	}
	return MAPTBL_ST_OK;
}

static void table_error(struct mtdev *d, struct mtdev_fn *f, unsigned terr)
{
	f->cfg.status = maptbl_hw_set(MAPTBL_VFCFG_STATUS_TABLE_ERROR, MAPTBL_VFCFG_STATUS_TERR_SHIFT,
				      MAPTBL_VFCFG_STATUS_TERR_MASK, terr);
	mtdev_error(d, f->num, MAPTBL_ERRSRC_TABLE, terr);
}

/* Stall the current request with fault @reason on [@lba, @lba + @n) and raise the fault. */
static void raise_fault(struct mtdev *d, struct mtdev_fn *f, unsigned reason, uint64_t lba,
			uint64_t n)
{
	bool write = f->cur.opcode != MAPTBL_OP_READ && f->cur.opcode != MAPTBL_OP_FLUSH;

	f->stalled = true;
	f->cfg.fault_lba = lba;
	f->cfg.fault_count = (uint32_t)n;
	f->cfg.fault_info = maptbl_hw_fault_info(reason, write);
	f->stats[MAPTBL_STAT_FAULTS]++;
	if (!++d->fault_seq)
		d->fault_seq = 1;
	f->fault.lba = lba;
	f->fault.count = (uint32_t)n;
	f->fault.tag = f->cur.tag;
	f->fault.seq = d->fault_seq;
	f->fault.info = (uint16_t)f->cfg.fault_info;
	f->fault_unposted = true;
	mtdev_log(d, MTDEV_LOG_INFO, "VF %u: %s fault at block %llu, %llu blocks, reason %u, tag %u",
		  f->num, write ? "write" : "read", (unsigned long long)lba, (unsigned long long)n,
		  reason, f->cur.tag);
	/*
	 * The entry first, then the interrupt (as a device's MSI follows its DMA write): a host
	 * woken by the interrupt finds the entry. This used to raise first, and a host that looked
	 * at the queue before the entry was written found it empty and went back to sleep; the
	 * FAULT bit already set, the entry raised no interrupt (bench/serve/run.sh: faults waited
	 * for the service's 100 ms poll). Raised again for a fault the queue has no room for: the
	 * bit tells the host to look at the VFs' registers.
	 */
	mtdev_fq_post(d);
	mtdev_raise(d, &d->fn[0], MAPTBL_VEC_FAULT);
}

/* Stall the current request on run @x (@n blocks of it inside the request) and raise a fault. */
static void fault(struct mtdev *d, struct mtdev_fn *f, const struct mtdev_xlat *x, uint64_t n)
{
	raise_fault(d, f,
		    x->state == MTDEV_ABSENT	  ? MAPTBL_FAULT_ABSENT
		    : x->state == MTDEV_UNWRITTEN ? MAPTBL_FAULT_UNWRITTEN
						  : MAPTBL_FAULT_HOLE,
		    x->lba, n);
}

/*
 * A flush point (FLUSH, the end of a FUA write) of a VF whose host has allocations its
 * filesystem has not committed (CTRL.COMMIT): stall until the host committed them and walked
 * again (REGISTERS.md §12.6). true: stalled.
 */
static bool commit_fault(struct mtdev *d, struct mtdev_fn *f)
{
	if (!f->num || !(f->cfg.ctrl & MAPTBL_VFCFG_CTRL_COMMIT))
		return false;
	raise_fault(d, f, MAPTBL_FAULT_COMMIT, 0, 0);
	return true;
}

/* Execute the current request from where it stands, to its completion or to a stall. */
static void run(struct mtdev *d, struct mtdev_fn *f)
{
	struct mtdev_req *r = &f->cur;
	uint32_t bs;
	uint64_t disk_blocks;

	if (r->opcode == MAPTBL_OP_FLUSH) {
		if (commit_fault(d, f))
			return;
		f->stats[MAPTBL_STAT_FLUSHES]++;
		complete(d, f, r->tag,
			 d->ops.disk_flush && d->ops.disk_flush(d->ctx, f->num) ? MAPTBL_ST_IO_ERROR
										: MAPTBL_ST_OK,
			 0);
		return;
	}
	/* parse() refused every data request of a VF without a table: bs is never 0 here. */
	bs = fn_block_size(d, f);
	disk_blocks = d->disk_bytes / bs;
	while (r->done < r->nblocks) {
		uint64_t lba = r->lba + r->done, left = r->nblocks - r->done, n, moved = 0;
		struct mtdev_xlat x;
		unsigned st = MAPTBL_ST_OK;

		if (!f->num) {
			x.lba = lba;
			x.pblk = lba;
			x.len = left;
			x.state = MTDEV_MAPPED;
		} else {
			unsigned terr = mtdev_translate(d, f, lba, &x);

			if (terr) {
				table_error(d, f, terr);
				complete(d, f, r->tag, MAPTBL_ST_TABLE_ERROR, r->done);
				return;
			}
		}
		n = x.len < left ? x.len : left;
		if (x.state == MTDEV_ABSENT || (x.state != MTDEV_MAPPED && r->opcode == MAPTBL_OP_WRITE)) {
			fault(d, f, &x, n);
			return;
		}
		if (x.state != MTDEV_MAPPED) {
			if (r->opcode == MAPTBL_OP_READ) {
				st = move(d, f, n, false, 0, &moved);
				f->stats[MAPTBL_STAT_ZERO_BLOCKS] += moved;
				f->stats[MAPTBL_STAT_READ_BLOCKS] += moved;
			} else {
				moved = n;	/* WRITE_ZEROES: the blocks already read as zeros */
			}
		} else if (x.pblk > disk_blocks || n > disk_blocks - x.pblk) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
				  "function %u: block %llu maps to %llu blocks at %llu, past the disk's %llu",
				  f->num, (unsigned long long)lba, (unsigned long long)n,
				  (unsigned long long)x.pblk, (unsigned long long)disk_blocks);
			if (f->num)
				table_error(d, f, MAPTBL_TERR_PAST_DISK);
			st = MAPTBL_ST_IO_ERROR;
		} else {
			st = move(d, f, n, true, x.pblk * bs, &moved);
			f->stats[r->opcode == MAPTBL_OP_READ ? MAPTBL_STAT_READ_BLOCKS
							     : MAPTBL_STAT_WRITE_BLOCKS] += moved;
		}
		if (st != MAPTBL_ST_OK) {
			complete(d, f, r->tag, st, r->done + (uint32_t)moved);
			return;
		}
		r->done += (uint32_t)n;
	}
	if ((r->flags & MAPTBL_REQ_F_FUA) && commit_fault(d, f))
		return; /* retried with every block done: straight here again */
	if ((r->flags & MAPTBL_REQ_F_FUA) && d->ops.disk_flush && d->ops.disk_flush(d->ctx, f->num)) {
		complete(d, f, r->tag, MAPTBL_ST_IO_ERROR, r->done);
		return;
	}
	complete(d, f, r->tag, MAPTBL_ST_OK, r->done);
}

void mtdev_walk_again(struct mtdev *d, struct mtdev_fn *f, uint32_t val)
{
	unsigned terr;

	if (!f->tbl.valid) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "VF %u WALK_AGAIN %u: the VF is not enabled",
			  f->num, val);
		return;
	}
	switch (val) {
	case MAPTBL_WALK_AGAIN_RETRY:
		terr = mtdev_table_latch(d, f);
		if (terr)
			table_error(d, f, terr);
		else
			f->cfg.status = 0;
		mtdev_cache_flush(d, f->num);
		f->stalled = false;
		f->fault_unposted = false;
		return;
	case MAPTBL_WALK_AGAIN_FAIL:
	case MAPTBL_WALK_AGAIN_FAIL_IO:
		if (!f->stalled) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "VF %u WALK_AGAIN %u: nothing is stalled",
				  f->num, val);
			return;
		}
		f->fault_unposted = false;
		complete(d, f, f->cur.tag,
			 val == MAPTBL_WALK_AGAIN_FAIL ? MAPTBL_ST_NO_SPACE : MAPTBL_ST_IO_ERROR,
			 f->cur.done);
		return;
	}
	mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
		  "VF %u WALK_AGAIN %u: not 1 (retry), 2 (fail) or 3 (fail with an I/O error)", f->num,
		  val);
}

bool mtdev_fn_has_work(const struct mtdev *d, const struct mtdev_fn *f)
{
	if (!(f->q_status & MAPTBL_Q_STATUS_RUNNING) || f->stalled || (f->num && f->num > d->num_vfs))
		return false;
	return f->busy ||
	       (f->rq_head != f->rq_tail && (f->cq_tail + 1) % f->cq_size != f->cq_head);
}

/* One step of function @f: consume one request and run it (or resume the current one). */
static bool step(struct mtdev *d, struct mtdev_fn *f)
{
	struct maptbl_hw_req q;
	unsigned st;

	if (!mtdev_fn_has_work(d, f))
		return false;
	if (!f->busy) {
		if (d->ops.dma_read(d->ctx, f->num, f->rq_base + (uint64_t)f->rq_head * sizeof(q), &q,
				    sizeof(q))) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "function %u: request entry %u not readable",
				  f->num, f->rq_head);
			mtdev_q_stop(d, f, MAPTBL_QERR_DMA);
			return true;
		}
		f->rq_head = (f->rq_head + 1) % f->rq_size;
		st = parse(d, f, &q);
		if (st != MAPTBL_ST_OK) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
				  "function %u: request tag %u (opcode %u, block %llu, %u blocks) refused: status %u",
				  f->num, f->cur.tag, q.opcode, (unsigned long long)f->cur.lba,
				  f->cur.nblocks, st);
			complete(d, f, f->cur.tag, st, 0);
			return true;
		}
		f->busy = true;
	}
	run(d, f);
	return true;
}

bool mtdev_has_work(const struct mtdev *d)
{
	unsigned i;

	for (i = 0; i <= d->num_vfs; i++) {
		if (mtdev_fn_has_work(d, &d->fn[i]))
			return true;
		if (d->fn[i].fault_unposted && fq_room(d))
			return true;
	}
	return false;
}

unsigned mtdev_process_fn(struct mtdev *d, unsigned fn, unsigned budget)
{
	uint64_t before = d->completions;

	if (fn > d->num_vfs)
		return 0;
	mtdev_fq_post(d);
	while ((!budget || d->completions - before < budget) && step(d, &d->fn[fn]))
		;
	return (unsigned)(d->completions - before);
}

unsigned mtdev_process(struct mtdev *d, unsigned budget)
{
	uint64_t before = d->completions;
	bool progress = true;

	mtdev_fq_post(d);
	while (progress && (!budget || d->completions - before < budget)) {
		unsigned i;

		progress = false;
		/* One request per function per pass: round-robin, the PF first (REGISTERS.md §10). */
		for (i = 0; i <= d->num_vfs && (!budget || d->completions - before < budget); i++)
			progress |= step(d, &d->fn[i]);
	}
	return (unsigned)(d->completions - before);
}
