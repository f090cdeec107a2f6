package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.Constants;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.MethodNotAllowedException;
import org.hl7.fhir.instance.model.api.IBaseConformance;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestResourceComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.ConditionalDeleteStatus;

import java.util.List;

/**
 * {@code no-conditional}: {@code If-None-Exist} (header, or
 * {@code request.ifNoneExist} of a Bundle entry) is ignored, so a repeated
 * create makes a duplicate, as an EHR without conditional create does.
 * Conditional update, patch and delete (a search URL instead of an id) answer
 * 405. The statement says {@code conditionalCreate} and
 * {@code conditionalUpdate} false and {@code conditionalDelete}
 * {@code not-supported} for every type.
 */
@Interceptor
public final class NoConditional extends ModeInterceptor {

	public NoConditional(EhrModes theModes) {
		super(theModes, Mode.NO_CONDITIONAL);
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public void plainRequest(RequestDetails theRequest) {
		RestOperationTypeEnum operation = theRequest.getRestOperationType();
		if (operation == null || !on(theRequest)) {
			return;
		}
		switch (operation) {
			case CREATE -> theRequest.setHeaders(Constants.HEADER_IF_NONE_EXIST, List.of());
			case UPDATE, PATCH, DELETE -> {
				if (theRequest.getConditionalUrl(operation) != null) {
					throw new MethodNotAllowedException(prefix() + "conditional " + operation.getCode()
							+ " (a search URL instead of an id) is not supported");
				}
			}
			default -> {
				// nothing conditional about other interactions
			}
		}
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED)
	public void bundle(RequestDetails theRequest, RestOperationTypeEnum theOperation) {
		if ((theOperation != RestOperationTypeEnum.TRANSACTION && theOperation != RestOperationTypeEnum.BATCH)
				|| !on(theRequest)
				|| !(theRequest.getResource() instanceof Bundle bundle)) {
			return;
		}
		int index = 0;
		for (Bundle.BundleEntryComponent entry : bundle.getEntry()) {
			Bundle.BundleEntryRequestComponent request = entry.getRequest();
			request.setIfNoneExist(null);
			Bundle.HTTPVerb verb = request.getMethod();
			boolean writes = verb == Bundle.HTTPVerb.PUT || verb == Bundle.HTTPVerb.PATCH
					|| verb == Bundle.HTTPVerb.DELETE;
			if (writes && request.hasUrl() && request.getUrl().contains("?")) {
				throw new MethodNotAllowedException(prefix() + describeEntry(index, entry)
						+ ": conditional " + verb.toCode() + " is not supported");
			}
			index++;
		}
	}

	@Hook(Pointcut.SERVER_CAPABILITY_STATEMENT_GENERATED)
	public void statement(IBaseConformance theStatement, RequestDetails theRequest) {
		if (!on(theRequest)) {
			return;
		}
		for (CapabilityStatementRestComponent rest : restParts(theStatement)) {
			for (CapabilityStatementRestResourceComponent resource : rest.getResource()) {
				resource.setConditionalCreate(false);
				resource.setConditionalUpdate(false);
				resource.setConditionalDelete(ConditionalDeleteStatus.NOTSUPPORTED);
			}
		}
	}
}
