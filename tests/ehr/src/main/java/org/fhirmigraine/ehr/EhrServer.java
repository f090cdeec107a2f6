package org.fhirmigraine.ehr;

public final class EhrServer {
	public static void main(String[] args) {}
}
