/* array.h: growing a malloc'd array by doubling. */
#ifndef HOOKCAST_ARRAY_H
#define HOOKCAST_ARRAY_H

#include <stddef.h>

/*
 * Room for NEED elements of ELEM bytes in the array P of *CAP elements:
 * returns P itself when it has the room, else P reallocated to the next
 * doubling of *CAP (16 at first) that holds NEED, with *CAP updated.  NULL
 * when out of memory (or the size would overflow, or ELEM is 0): P and
 * *CAP are as they were, and P still the caller's to free.
 */
void *array_grow(void *p, size_t *cap, size_t need, size_t elem);

#endif
