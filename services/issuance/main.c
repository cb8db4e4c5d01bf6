/* caplat-issuance — the certificate registry, renewal on the USB key with
 * the vendor CAs (local CA by default), revocation and CRLs, and the
 * downstream platforms' interop API. main() is thin: configuration (which
 * opens the local CA), the shared service start-up, adapters, routes,
 * consumers, the sweeps, run.
 *
 *   caplat-issuance [--workers N]   serve
 *   caplat-issuance migrate         apply migrations and exit
 *   caplat-issuance ca-init         create the local CA if missing and print
 *                                   the path of its roots bundle
 *   caplat-issuance ca-issue …      a first application at the local CA
 *                                   (desk.c), listed by its directory */
#include "issuance.h"

#include "vendor.h"

#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "ca-init") == 0) {
		issuance_config_load();
		if (issuance.cfg.ca_dir[0] != '\0')
			printf("%s/roots.pem\n", issuance.cfg.ca_dir);
		else
			printf("%s/ca/roots.pem\n", issuance.cfg.var_dir);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "ca-issue") == 0) {
		issuance_config_load();
		return issuance_ca_issue(argc, argv);
	}
	issuance_config_load();
	svc_init(&issuance.svc, "issuance", argc, argv);
	issuance_adapters_init();
	issuance_import_init();
	http_server_routes(issuance.svc.http, issuance_routes,
	    issuance_nroutes);
	http_server_add_metrics(issuance.svc.http, issuance_metrics, NULL);
	http_server_add_metrics(issuance.svc.http, issuance_roots_metrics,
	    NULL);
	issuance_events_subscribe();
	issuance_sweep_start();
	svc_run(&issuance.svc);
	/* Loop objects of this service go before the loop itself. */
	issuance_sweep_stop();
	vendor_free_all();
	svc_free(&issuance.svc);
	localca_free(issuance.localca);
	return 0;
}
