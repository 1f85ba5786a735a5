#!/usr/bin/env bash
# An EC2 script as one would write it for AWS, run with the AWS CLI v1 against Kumo: only the
# endpoint differs. Needs AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, KUMO_EC2
# (the endpoint URL) and IMAGE (an ami- id) in the environment; prints `name=value` lines of what
# it made and saw, for tests/compat/test_ec2_awscli.py to check against the OpenStack API.
set -euo pipefail
ec2() { aws --endpoint-url "$KUMO_EC2" --output text ec2 "$@"; }
say() { printf '%s=%s\n' "$1" "$2"; }

ec2 create-key-pair --key-name cli-key --query KeyMaterial > "$WORKDIR/cli-key.pem"
grep -q -- "-----BEGIN" "$WORKDIR/cli-key.pem"
say key_fingerprint "$(ec2 describe-key-pairs --key-names cli-key --query 'KeyPairs[0].KeyFingerprint')"

ids=$(ec2 run-instances --image-id "$IMAGE" --instance-type m1.tiny --count 2 \
    --key-name cli-key --user-data 'echo hello from the aws cli' \
    --tag-specifications 'ResourceType=instance,Tags=[{Key=role,Value=cli},{Key=suite,Value=awscli}]' \
    --query 'Instances[].InstanceId')
read -r first second <<< "$ids"
say instances "$first $second"
aws --endpoint-url "$KUMO_EC2" ec2 wait instance-running --instance-ids $ids
say running "$(ec2 describe-instances --filters Name=tag:role,Values=cli \
    Name=instance-state-name,Values=running \
    --query 'sort(Reservations[].Instances[].InstanceId)' | tr '\t' ' ')"
say tagged "$(ec2 describe-instances --instance-ids "$first" \
    --query 'Reservations[0].Instances[0].Tags[?Key==`suite`].Value | [0]')"
console=$(ec2 get-console-output --instance-id "$first" --query Output)
say console "${console%%$'\n'*}"

ec2 stop-instances --instance-ids "$first" > /dev/null
aws --endpoint-url "$KUMO_EC2" ec2 wait instance-stopped --instance-ids "$first"
say stopped "$(ec2 describe-instances --instance-ids "$first" \
    --query 'Reservations[0].Instances[0].State.Name')"
ec2 start-instances --instance-ids "$first" > /dev/null
aws --endpoint-url "$KUMO_EC2" ec2 wait instance-running --instance-ids "$first"

image=$(ec2 create-image --instance-id "$first" --name cli-snap --query ImageId)
aws --endpoint-url "$KUMO_EC2" ec2 wait image-available --image-ids "$image"
say image "$image"
ec2 deregister-image --image-id "$image"

group=$(ec2 create-security-group --group-name cli-ssh --description 'ssh from the cli' \
    --query GroupId)
ec2 authorize-security-group-ingress --group-id "$group" --protocol tcp --port 22 \
    --cidr 198.51.100.0/24 > /dev/null
say group "$group"
say group_rule "$(ec2 describe-security-groups --group-ids "$group" \
    --query 'SecurityGroups[0].IpPermissions[0].[IpProtocol,FromPort,ToPort,IpRanges[0].CidrIp]' \
    | tr '\t' ' ')"

zone=$(ec2 describe-availability-zones --query 'AvailabilityZones[0].ZoneName')
volume=$(ec2 create-volume --size 1 --availability-zone "$zone" --query VolumeId)
aws --endpoint-url "$KUMO_EC2" ec2 wait volume-available --volume-ids "$volume"
say volume "$volume"
ec2 attach-volume --volume-id "$volume" --instance-id "$second" --device /dev/vdb > /dev/null
aws --endpoint-url "$KUMO_EC2" ec2 wait volume-in-use --volume-ids "$volume"
# As on AWS, the volume is in-use from the request on; its attachment says when it is plugged in.
for _ in $(seq 60); do
    attached=$(ec2 describe-volumes --volume-ids "$volume" \
        --query 'Volumes[0].Attachments[0].[InstanceId,State]' | tr '\t' ' ')
    [ "${attached#* }" = attached ] && break
    sleep 1
done
say attached "$attached"
ec2 detach-volume --volume-id "$volume" > /dev/null
aws --endpoint-url "$KUMO_EC2" ec2 wait volume-available --volume-ids "$volume"
ec2 delete-volume --volume-id "$volume"
aws --endpoint-url "$KUMO_EC2" ec2 wait volume-deleted --volume-ids "$volume"

ec2 terminate-instances --instance-ids $ids > /dev/null
aws --endpoint-url "$KUMO_EC2" ec2 wait instance-terminated --instance-ids $ids
say terminated "$(ec2 describe-instances --instance-ids $ids \
    --query 'Reservations[].Instances[].State.Name' | tr '\t' ' ')"
ec2 delete-security-group --group-id "$group"
ec2 delete-key-pair --key-name cli-key
say done yes
