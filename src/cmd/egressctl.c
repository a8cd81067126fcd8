/*
 * egressctl - the operator's command line for egressd: status, uplinks, connections,
 * events, drain, config check/apply/confirm, backup/restore, passwd (doc/egressctl.8).
 *
 * main() only hands over; the client lives in src/ctl/.
 */
#include "ctl.h"

int main(int argc, char **argv)
{
	return ctl_main(argc, argv);
}
