package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.Constants;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.api.server.ResponseDetails;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.instance.model.api.IIdType;

import java.util.List;

/**
 * {@code minimal-response}: creates, updates and patches answer 201/200 with
 * an empty body, a {@code Location} header
 * ({@code <base>/Type/id/_history/n}, on updates too) and an {@code ETag},
 * whatever {@code Prefer} says; transaction and batch entries carry no
 * resource. Nothing in a CapabilityStatement can say this; the mode is named
 * in {@code implementation.description}.
 */
@Interceptor
public final class MinimalResponse extends ModeInterceptor {

	public MinimalResponse(EhrModes theModes) {
		super(theModes, Mode.MINIMAL_RESPONSE);
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public void prefer(RequestDetails theRequest) {
		RestOperationTypeEnum operation = theRequest.getRestOperationType();
		if (operation == null || !on(theRequest)) {
			return;
		}
		switch (operation) {
			// The resource is asked for, to learn its version, and dropped on the way out.
			case CREATE, UPDATE, PATCH -> theRequest.setHeaders(Constants.HEADER_PREFER,
					List.of(Constants.HEADER_PREFER_RETURN + "=" + Constants.HEADER_PREFER_RETURN_REPRESENTATION));
			case TRANSACTION, BATCH -> theRequest.setHeaders(Constants.HEADER_PREFER,
					List.of(Constants.HEADER_PREFER_RETURN + "=" + Constants.HEADER_PREFER_RETURN_MINIMAL));
			default -> {
				// reads and searches answer as always
			}
		}
	}

	@Hook(Pointcut.SERVER_OUTGOING_RESPONSE)
	public void dropBody(RequestDetails theRequest, ResponseDetails theResponse) {
		RestOperationTypeEnum operation = theRequest.getRestOperationType();
		if ((operation != RestOperationTypeEnum.CREATE
						&& operation != RestOperationTypeEnum.UPDATE
						&& operation != RestOperationTypeEnum.PATCH)
				|| !on(theRequest)) {
			return;
		}
		IBaseResource resource = theResponse.getResponseResource();
		if (resource == null) {
			return;
		}
		// HAPI sends Location itself only for POST; an update gets one here.
		if (operation != RestOperationTypeEnum.CREATE) {
			IIdType id = resource.getIdElement();
			if (id != null && id.hasIdPart()) {
				IIdType full = id.withServerBase(theRequest.getFhirServerBase(), resource.fhirType());
				theRequest.getResponse().addHeader(Constants.HEADER_LOCATION, full.getValue());
			}
		}
		theResponse.setResponseResource(null);
	}
}
