#ifndef HERALD_ABI_LAYOUT_H
#define HERALD_ABI_LAYOUT_H
/* "name size align" and "name.field offset" lines, one per struct and field of plugin.h. */
const char *herald_abi_layout_table(void);
#endif
