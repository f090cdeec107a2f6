package org.fhirmigraine.ehr;

import ca.uhn.fhir.batch2.api.IJobMaintenanceService;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Runs HAPI's batch job maintenance pass every half second. HAPI schedules it
 * once a minute, which moves a bulk export from one step to the next that
 * slowly; a test EHR answers a kick-off within seconds instead.
 */
public class QuickJobMaintenance implements AutoCloseable {

	private static final Logger ourLog = LoggerFactory.getLogger(QuickJobMaintenance.class);
	private final ScheduledExecutorService myExecutor;

	public QuickJobMaintenance(IJobMaintenanceService theMaintenance) {
		myExecutor = Executors.newSingleThreadScheduledExecutor(runnable -> {
			Thread thread = new Thread(runnable, "quick-job-maintenance");
			thread.setDaemon(true);
			return thread;
		});
		myExecutor.scheduleWithFixedDelay(() -> {
			try {
				theMaintenance.runMaintenancePass();
			} catch (RuntimeException e) {
				ourLog.warn("batch job maintenance pass failed: {}", e.toString());
			}
		}, 2, 500, TimeUnit.MILLISECONDS);
	}

	@Override
	public void close() {
		myExecutor.shutdownNow();
	}
}
