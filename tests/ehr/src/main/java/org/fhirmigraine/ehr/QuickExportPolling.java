package org.fhirmigraine.ehr;

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;

import java.io.IOException;

/**
 * HAPI answers a bulk export's status URL with {@code Retry-After: 120} while
 * the export runs; on this test EHR an export of a test's data takes a second or
 * two, so the status URL says {@code Retry-After: 1} instead and a client that
 * honours the header (as the Bulk Data specification asks) is not held up for
 * two minutes. Every other answer keeps its headers (the throttle mode's
 * {@code Retry-After} included).
 */
public class QuickExportPolling implements Filter {

	private static final String RETRY_AFTER = "Retry-After";

	@Override
	public void doFilter(ServletRequest theRequest, ServletResponse theResponse, FilterChain theChain)
			throws IOException, ServletException {
		String uri = theRequest instanceof HttpServletRequest http ? http.getRequestURI() : "";
		if ((uri.endsWith("$export-poll-status") || uri.endsWith("%24export-poll-status")) && theResponse instanceof HttpServletResponse http) {
			theChain.doFilter(theRequest, new HttpServletResponseWrapper(http) {
				@Override
				public void setHeader(String theName, String theValue) {
					super.setHeader(theName, RETRY_AFTER.equalsIgnoreCase(theName) ? "1" : theValue);
				}

				@Override
				public void addHeader(String theName, String theValue) {
					super.addHeader(theName, RETRY_AFTER.equalsIgnoreCase(theName) ? "1" : theValue);
				}
			});
			return;
		}
		theChain.doFilter(theRequest, theResponse);
	}
}
